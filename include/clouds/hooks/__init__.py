"""The providers' hooks, each with an ``api_endpoint`` extra on the connection; without it, exactly the provider's hook.

One module per hook, so that a GCS object store does not import BigQuery (and pandas with it).
"""
