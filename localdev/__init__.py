"""The local platform: three emulated cloud regions and Airflow 3 on 127.0.0.1 (`python -m localdev`)."""
