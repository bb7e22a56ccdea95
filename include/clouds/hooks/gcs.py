"""The provider's GCS hook, with an endpoint that can come from the Airflow connection."""

from __future__ import annotations

from airflow.providers.google.cloud.hooks.gcs import GCSHook
from airflow.providers.google.common.consts import CLIENT_INFO
from google.cloud import storage


class GCSEndpointHook(GCSHook):
    """``GCSHook`` that honours an ``api_endpoint`` extra on the connection.

    The provider's hook always talks to storage.googleapis.com (or to ``STORAGE_EMULATOR_HOST`` from the
    process environment). With ``api_endpoint`` in the connection extra, a private endpoint or a local
    ``fake-gcs-server`` is chosen per connection, so switching clouds means changing connections only.
    Without it, this hook is exactly ``GCSHook``.
    """

    def get_conn(self) -> storage.Client:
        endpoint = self._get_field("api_endpoint")
        if not endpoint:
            return super().get_conn()
        if not self._conn:
            self._conn = storage.Client(
                credentials=self.get_credentials(),
                client_info=CLIENT_INFO,
                project=self.project_id,
                client_options={"api_endpoint": endpoint},
            )
        return self._conn
