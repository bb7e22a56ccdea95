# The platform image: Airflow 3.3.2 on Python 3.11 with the platform's code and pinned dependencies.
FROM apache/airflow:3.3.2-python3.11

# Dependencies first, so a code change does not reinstall them. requirements.lock pins every package
# (dev-only ones too); used as constraints it only fixes versions and installs nothing by itself.
COPY requirements.txt requirements.lock /tmp/mlp/
RUN pip install --no-cache-dir -r /tmp/mlp/requirements.txt -c /tmp/mlp/requirements.lock

# The platform's code, where the Airflow components look for it. plugins/ holds only deployment-specific plugins.
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 config/ /opt/airflow/config/
COPY --chown=airflow:0 pyproject.toml /opt/airflow/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 localdev/ /opt/airflow/localdev/

# The platform's packages (include, localdev), installed editable so that compose's read-only mounts of
# include/ take effect without a rebuild; installing registers the UI plugins' entry points. No PYTHONPATH.
RUN pip install --no-cache-dir --no-deps --no-build-isolation --editable /opt/airflow
