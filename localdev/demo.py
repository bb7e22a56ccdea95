"""The demo model: a scikit-learn classifier trained at start-up, saved with skops, signed and registered in the
primary region.

``up`` registers it once and announces it with an MLflow-shaped ``model_version.created`` event on the event
queue, so the replication DAG, started by its asset watcher, copies it to the other regions and points each
region's rollout pointer at it. The signature is made with the local release key (``release_keys``), which
plays the part of a registry's signer: it lives under the state folder, never in Airflow's environment, and
only its public half is in the directory the serving processes trust.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from include.catalogue import Catalogue
from include.clouds.objectstore import store_for
from include.replication.__main__ import registry_event, send_event
from include.replication.replicate import read_manifest, register_model_version
from include.replication.signing import (
    PRIVATE_KEY_SUFFIX,
    PUBLIC_KEY_SUFFIX,
    SigningKey,
    generate_key_pair,
    sign_version,
)

DEMO_MODEL = "iris-classifier"
DEMO_VERSION = "1"
RELEASE_KEY_ID = "local-release-1"


def trusted_keys_dir(state_dir: Path) -> Path:
    """The directory of public keys the local serving processes trust (``--trusted-keys``)."""
    return state_dir / "trusted-keys"


def release_keys(state_dir: Path) -> SigningKey:
    """The local release step's signing key, generated once under ``state_dir/release-keys``; its public key
    is copied to ``trusted_keys_dir``, the only key directory serving sees."""
    private_path = state_dir / "release-keys" / f"{RELEASE_KEY_ID}{PRIVATE_KEY_SUFFIX}"
    if not private_path.exists():
        generate_key_pair(private_path.parent, RELEASE_KEY_ID)
    trusted = trusted_keys_dir(state_dir)
    trusted.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(private_path.with_suffix(PUBLIC_KEY_SUFFIX), trusted / f"{RELEASE_KEY_ID}{PUBLIC_KEY_SUFFIX}")
    return SigningKey.from_file(private_path)


def demo_model_files() -> dict[str, bytes]:
    """A logistic regression on the iris data set that scikit-learn ships (``model.skops``), and a model card."""
    import sklearn
    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from include.serving.loader import MODEL_FILE

    data = load_iris()
    train_x, test_x, train_y, test_y = train_test_split(data.data, data.target, test_size=0.3, random_state=7)
    model = LogisticRegression(max_iter=500).fit(train_x, train_y)
    buffer = io.BytesIO()
    skops.io.dump(model, buffer)
    card = {
        "model": DEMO_MODEL,
        "version": DEMO_VERSION,
        "framework": f"scikit-learn {sklearn.__version__}",
        "features": list(data.feature_names),
        "classes": list(map(str, data.target_names)),
        "test_accuracy": round(float(model.score(test_x, test_y)), 4),
    }
    return {MODEL_FILE: buffer.getvalue(), "model_card.json": json.dumps(card, indent=2).encode()}


def register_demo_model(catalogue: Catalogue, key: SigningKey) -> str:
    """Register and sign the demo model in the primary region and send its event, unless it is already there."""
    files = demo_model_files()  # before the hooks load Airflow: importing skops scans every module loaded
    region = catalogue.primary
    store = store_for(region)
    if read_manifest(store, DEMO_MODEL, DEMO_VERSION) is not None:
        return f"demo model {DEMO_MODEL} {DEMO_VERSION} is already registered in {region.name}"
    manifest = register_model_version(region, DEMO_MODEL, DEMO_VERSION, files)
    sign_version(store, [], DEMO_MODEL, DEMO_VERSION, key)
    line = (
        f"registered demo model {DEMO_MODEL} {DEMO_VERSION} in {region.name} ({manifest.total_size:,} bytes), "
        f"signed with key {key.key_id}"
    )
    if catalogue.events is not None:
        send_event(catalogue, registry_event(catalogue, DEMO_MODEL, DEMO_VERSION, region.name))
        line += "; a model_version.created event is on the queue, so replication starts by itself"
    return line
