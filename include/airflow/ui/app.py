"""What the platform's UI plugins share: a FastAPI app behind Airflow's login."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def protected_app(title: str) -> FastAPI:
    """A FastAPI app whose every route needs a valid Airflow login, with no generated API docs.

    Plugin apps are not protected by the API server itself. Airflow's ``get_user`` dependency accepts the UI's
    session cookie (``_token``, which the page inside the UI's iframe sends) and bearer tokens; a request with
    neither, or with an invalid one, gets 401 or 403 before any route runs.
    """
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import Depends, FastAPI

    return FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None, dependencies=[Depends(get_user)])
