"""The Airflow layer: the platform's operators, sensors, triggers, notifier, assets, task defaults and UI
plugins (``include.airflow.ui``, registered through the ``airflow.plugins`` entry points).

DAG files wire these together; the domain below (replication, failover, health, cost, serving) never imports
this package, so it stays plain Python that runs and tests without Airflow's scheduler.
"""
