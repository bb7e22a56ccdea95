"""The provider's BigQuery hook, with an endpoint that can come from the Airflow connection."""

from __future__ import annotations

from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
from google.api_core.client_options import ClientOptions


class BigQueryEndpointHook(BigQueryHook):
    """``BigQueryHook`` that honours an ``api_endpoint`` extra on the connection.

    The provider's hook always talks to bigquery.googleapis.com. With ``api_endpoint`` in the connection
    extra, a private endpoint or the local stand-in (``localdev.bigquery_standin``) is chosen per
    connection; ``get_client`` and ``get_conn`` both build their client options here. Anonymous
    credentials come from the provider's own ``is_anonymous`` extra. Without ``api_endpoint``, this hook
    is exactly ``BigQueryHook``.
    """

    def get_client_options(self, api_endpoint_override: str | None = None) -> ClientOptions:
        return super().get_client_options(api_endpoint_override or self._get_field("api_endpoint") or None)
