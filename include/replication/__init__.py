"""Model replication across regions: manifests, streaming copies, verification, status and audit."""
