"""The cloud access layer: object stores, Route 53, Kubernetes, billing clients and provider hooks."""
