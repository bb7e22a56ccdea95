"""Airflow UI plugins: the replication status page and the cost report, loaded by entry point."""
