-- The platform's own tables (replication status) live apart from Airflow's metadata database.
CREATE DATABASE mlp_state;
