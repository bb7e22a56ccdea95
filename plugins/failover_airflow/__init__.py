"""Airflow extensions for health sensing and failover: triggers, sensors, operators and the notifier."""
