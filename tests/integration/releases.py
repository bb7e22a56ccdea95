"""Model versions released in the emulated regions as a release step and replication would leave them, for the
serving tests: registered, signed with a test release key, and the region's rollout pointer moved to them."""

from __future__ import annotations

from pathlib import Path

import yaml

from include.catalogue import Catalogue, Region, catalogue_path, load_catalogue
from include.clouds.objectstore import store_for
from include.replication.manifest import Manifest
from include.replication.replicate import register_model_version
from include.replication.rollout import promote
from include.replication.signing import SigningKey, sign_version


def release(region: Region, model: str, version: str, files: dict[str, bytes], key: SigningKey | None) -> Manifest:
    """Register ``files`` as ``model`` ``version`` in ``region``, sign it with ``key`` (None: leave it unsigned)
    and point the region at it, as replication does once the version is verified there."""
    manifest = register_model_version(region, model, version, files)
    store = store_for(region)
    if key is not None:
        sign_version(store, [], model, version, key)
    promote(store, manifest, "serving test")
    return manifest


def catalogue_reporting_to(path: Path, reports_queue_url: str | None) -> Catalogue:
    """The local catalogue, written to ``path``, with serving's corrupt-copy reports going to ``reports_queue_url``
    (None: not sent), so that a test never puts reports on the queue the platform's audit watches."""
    data = yaml.safe_load(catalogue_path().read_text())
    data["events"]["reports_queue_url"] = reports_queue_url
    if reports_queue_url is None:
        del data["events"]["reports_queue_url"]
    path.write_text(yaml.safe_dump(data))
    return load_catalogue(path)
