"""The serving service's guard, through the real app (FastAPI's TestClient, the model in an in-memory store):
bearer tokens and their rotation, the rate limit, the body and instance limits, the metrics listener, the
rejections counted in ``/metrics``, and FastAPI's documentation pages not served."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from include.catalogue import load_catalogue
from include.health.probes import metric_samples
from include.serving import auth
from include.serving.app import create_app
from include.serving.auth import BearerTokens, TokenFileError, ensure_token_file, read_tokens
from include.serving.guard import Limits, RateLimiter
from localdev.demo import demo_model_files, release_keys, trusted_keys_dir
from tests.include.serving.memory_store import MemoryStore

REGION = "gcp-europe-west1"
IRIS_SETOSA = [5.1, 3.5, 1.4, 0.2]
MODEL = "guarded"
TOKEN = "first-token-0123456789abcdef"
ROTATED = "second-token-0123456789abcdef"


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> tuple[MemoryStore, object]:
    """A store holding a signed version of the demo model, and the trusted-keys directory."""
    directory = tmp_path_factory.mktemp("keys")
    key = release_keys(directory)
    store = MemoryStore(load_catalogue().region(REGION))
    store.release(MODEL, "1", demo_model_files(), key)
    return store, trusted_keys_dir(directory)


def serving(released, tmp_path, token_text: str = TOKEN + "\n", base_url: str = "http://testserver", **options):
    store, trusted = released
    token_file = tmp_path / "tokens"
    token_file.write_text(token_text)
    app = create_app(
        load_catalogue(), REGION, MODEL, trusted_keys=trusted, token_file=token_file, store=store, verify_interval=0,
        **options,
    )  # fmt: skip
    return TestClient(app, base_url=base_url), token_file


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rejected(client: TestClient, reason: str) -> float:
    text = client.get("/metrics", headers=bearer(TOKEN)).text
    [sample] = [s for s in metric_samples(text) if s.name == "mlp_serving_rejected_requests_total"
                and s.labels["reason"] == reason]  # fmt: skip
    return sample.value


def test_predict_and_metrics_need_a_bearer_token(released, tmp_path):
    client, _ = serving(released, tmp_path)
    with client:
        for method, path in (("POST", "/predict"), ("GET", "/metrics")):
            body = {"instances": [IRIS_SETOSA]} if method == "POST" else None
            missing = client.request(method, path, json=body)
            assert missing.status_code == 401, path
            assert missing.headers["WWW-Authenticate"] == 'Bearer realm="model-serving"'
            basic = client.request(method, path, json=body, headers={"Authorization": f"Basic {TOKEN}"})
            assert basic.status_code == 401 and 'error="invalid_request"' in basic.headers["WWW-Authenticate"]
            wrong = client.request(method, path, json=body, headers=bearer(TOKEN + "x"))
            assert wrong.status_code == 403 and wrong.json() == {
                "detail": "the bearer token is not one this service accepts"
            }
        answer = client.post("/predict", json={"instances": [IRIS_SETOSA]}, headers=bearer(TOKEN))
        assert answer.status_code == 200 and answer.json()["predictions"] == [0]
        assert client.get("/health").status_code == 200 and client.get("/ready").status_code == 200
        assert TOKEN not in client.get("/ready").text
        assert rejected(client, "unauthenticated") == 4 and rejected(client, "forbidden") == 2


def test_a_bad_token_body_is_refused_before_the_body_is_parsed(released, tmp_path):
    client, _ = serving(released, tmp_path)
    with client:
        answer = client.post("/predict", content=b"{not json", headers={"Content-Type": "application/json"})
        assert answer.status_code == 401


def test_fastapi_documentation_pages_are_not_served(released, tmp_path):
    client, _ = serving(released, tmp_path)
    with client:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
            answer = client.get(path, headers=bearer(TOKEN))
            assert (answer.status_code, answer.json()) == (404, {"detail": "Not Found"}), path


def test_tokens_rotate_without_a_restart(released, tmp_path, monkeypatch):
    monkeypatch.setattr(auth, "RELOAD_SECONDS", 0.0)
    client, token_file = serving(released, tmp_path)
    with client:
        token_file.write_text(f"{TOKEN}\n{ROTATED}\n")  # step 1: the new token beside the old one
        for token in (TOKEN, ROTATED):
            assert client.get("/metrics", headers=bearer(token)).status_code == 200
        token_file.write_text(f"{ROTATED}\n")  # step 2: the old one removed, once every client has the new one
        assert client.get("/metrics", headers=bearer(TOKEN)).status_code == 403
        assert client.get("/metrics", headers=bearer(ROTATED)).status_code == 200
        token_file.write_text("")  # a half-written file keeps the tokens read before
        assert client.get("/metrics", headers=bearer(ROTATED)).status_code == 200


def test_token_files_are_checked(tmp_path):
    with pytest.raises(TokenFileError, match="cannot read the token file .*: No such file"):
        read_tokens(tmp_path / "missing")
    (tmp_path / "blank").write_text("\n  \n")
    with pytest.raises(TokenFileError, match="holds no token"):
        BearerTokens(tmp_path / "blank")
    (tmp_path / "spaced").write_text(f"{TOKEN}\nhas a space inside it somewhere\n")
    with pytest.raises(TokenFileError, match="^line 2 of the token file .* no space inside") as refused:
        read_tokens(tmp_path / "spaced")
    assert TOKEN not in str(refused.value)
    made = tmp_path / "made" / "tokens"
    token = ensure_token_file(made)
    assert made.stat().st_mode & 0o777 == 0o600 and len(token) >= auth.MIN_TOKEN_CHARS
    assert ensure_token_file(made) == token  # made once


def test_rate_limit_is_a_token_bucket_per_client_token():
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.wait_seconds(b"a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.wait_seconds(b"a") == pytest.approx(0.5)
    assert limiter.wait_seconds(b"b") == 0.0  # another token has its own bucket
    now[0] = 0.5
    assert limiter.wait_seconds(b"a") == 0.0
    now[0] = 100.0
    assert [limiter.wait_seconds(b"a") for _ in range(4)][-1] > 0  # refilled to the burst, no more


def test_over_the_rate_limit_is_429_with_retry_after(released, tmp_path):
    client, _ = serving(released, tmp_path, f"{TOKEN}\n{ROTATED}\n", limits=Limits(rate=0.1, burst=2))
    with client:
        statuses = [client.get("/metrics", headers=bearer(TOKEN)).status_code for _ in range(2)]
        limited = client.post("/predict", json={"instances": [IRIS_SETOSA]}, headers=bearer(TOKEN))
        assert statuses == [200, 200] and limited.status_code == 429
        assert limited.headers["Retry-After"] == "10"
        assert "rate limit of 0.1 requests per second (burst 2)" in limited.json()["detail"]
        text = client.get("/metrics", headers=bearer(ROTATED)).text  # the other token's bucket is full
        [counted] = [s for s in metric_samples(text) if s.name == "mlp_serving_rejected_requests_total"
                     and s.labels["reason"] == "rate_limited"]  # fmt: skip
        assert counted.value == 1
        assert client.get("/health").status_code == 200  # the open endpoints are not limited


def test_bodies_and_instance_counts_over_their_limits_are_413(released, tmp_path):
    client, _ = serving(released, tmp_path, limits=Limits(max_body_bytes=200, max_instances=3))
    headers = bearer(TOKEN) | {"Content-Type": "application/json"}
    with client:
        declared = client.post("/predict", content=b"0" * 201, headers=headers)
        assert declared.status_code == 413
        assert declared.json() == {
            "detail": "a body of 201 bytes is over the limit of 200 bytes (--max-body-bytes)",
            "limit": 200,
            "value": 201,
        }

        def chunks():  # no Content-Length: the body is counted as it streams in
            for _ in range(10):
                yield b"[5.1, 3.5, 1.4, 0.2], " * 2

        streamed = client.post("/predict", content=chunks(), headers=headers)
        assert streamed.status_code == 413 and streamed.json()["limit"] == 200 and streamed.json()["value"] > 200
        many = client.post("/predict", json={"instances": [IRIS_SETOSA] * 4}, headers=bearer(TOKEN))
        assert many.status_code == 413
        assert many.json() == {
            "detail": "4 instances are over the limit of 3 (--max-instances)",
            "limit": 3,
            "value": 4,
        }
        assert client.post("/predict", json={"instances": [IRIS_SETOSA] * 3}, headers=bearer(TOKEN)).status_code == 200
        assert rejected(client, "body_too_large") == 2 and rejected(client, "too_many_instances") == 1


def test_an_invalid_body_is_422_with_long_inputs_quoted(released, tmp_path):
    client, _ = serving(released, tmp_path)
    with client:
        answer = client.post("/predict", json={"instances": "x" * 5000}, headers=bearer(TOKEN))
        assert answer.status_code == 422
        [problem] = answer.json()["detail"]
        assert problem["loc"] == ["body", "instances"] and problem["input"].endswith("... (5002 characters)")
        refused = client.post("/predict", json={"instances": [[1.0]]}, headers=bearer(TOKEN))
        assert refused.status_code == 422 and refused.json()["detail"].startswith("bad instances: 'X has 1 feature")
        assert rejected(client, "invalid_body") == 1


def test_with_a_metrics_port_metrics_is_answered_there_alone(released, tmp_path):
    client, _ = serving(released, tmp_path, metrics_port=9090)
    metrics_client = TestClient(client.app, base_url="http://testserver:9090")
    with client, metrics_client:
        assert client.get("/metrics", headers=bearer(TOKEN)).status_code == 404
        assert client.post("/predict", json={"instances": [IRIS_SETOSA]}, headers=bearer(TOKEN)).status_code == 200
        assert metrics_client.get("/metrics").status_code == 401  # the token is needed there too
        assert metrics_client.get("/metrics", headers=bearer(TOKEN)).status_code == 200
        for path in ("/predict", "/ready", "/health"):
            assert metrics_client.get(path, headers=bearer(TOKEN)).status_code == 404, path
