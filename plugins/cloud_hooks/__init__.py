"""Airflow hooks of the platform: thin extensions of the providers' hooks."""
