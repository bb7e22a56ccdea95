"""Model replication across regions: manifests, streaming copies, verification, status and audit."""

# Airflow pools the replication tasks run in: name -> (slots, description). Created by the local platform
# and by docker-compose's airflow-init; create them the same way in other deployments.
POOLS = {"model_replication": (4, "Concurrent model copies: bounds load on the cloud storage APIs")}
