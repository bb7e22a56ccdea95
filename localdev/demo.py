"""The demo model: a scikit-learn classifier trained at start-up and registered in the primary region.

``up`` registers it once and announces it with an MLflow-shaped ``model_version.created`` event on the
event queue, so the replication DAG, started by its asset watcher, copies it to the other regions.
"""

from __future__ import annotations

import io
import json
import pickle

from include.catalogue import Catalogue
from include.clouds.objectstore import store_for
from include.replication.__main__ import registry_event, send_event
from include.replication.replicate import read_manifest, register_model_version

DEMO_MODEL = "iris-classifier"
DEMO_VERSION = "1"


def demo_model_files() -> dict[str, bytes]:
    """A logistic regression on the iris data set that scikit-learn ships, and a model card."""
    import sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    data = load_iris()
    train_x, test_x, train_y, test_y = train_test_split(data.data, data.target, test_size=0.3, random_state=7)
    model = LogisticRegression(max_iter=500).fit(train_x, train_y)
    buffer = io.BytesIO()
    pickle.dump(model, buffer)
    card = {
        "model": DEMO_MODEL,
        "version": DEMO_VERSION,
        "framework": f"scikit-learn {sklearn.__version__}",
        "features": list(data.feature_names),
        "classes": list(map(str, data.target_names)),
        "test_accuracy": round(float(model.score(test_x, test_y)), 4),
    }
    return {"model.pkl": buffer.getvalue(), "model_card.json": json.dumps(card, indent=2).encode()}


def register_demo_model(catalogue: Catalogue) -> str:
    """Register the demo model in the primary region and send its event, unless it is already there."""
    region = catalogue.primary
    if read_manifest(store_for(region), DEMO_MODEL, DEMO_VERSION) is not None:
        return f"demo model {DEMO_MODEL} {DEMO_VERSION} is already registered in {region.name}"
    manifest = register_model_version(region, DEMO_MODEL, DEMO_VERSION, demo_model_files())
    line = f"registered demo model {DEMO_MODEL} {DEMO_VERSION} in {region.name} ({manifest.total_size:,} bytes)"
    if catalogue.events is not None:
        send_event(catalogue, registry_event(catalogue, DEMO_MODEL, DEMO_VERSION, region.name))
        line += "; a model_version.created event is on the queue, so replication starts by itself"
    return line
