"""Monitoring: the platform exporter, which shows the state database, Route 53 and the cost report to Prometheus."""
