"""Regional model serving: a small HTTP service that serves a verified model version."""
