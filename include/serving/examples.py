"""Every documented exchange with the serving API: a request, and the status and body it gets.

One list, three readers: the OpenAPI document's response examples (``include.serving.app``), the curl examples
of ``docs/api/serving.md``, and ``tests/integration/test_serving_api_examples.py``, which sends each one to a
real serving process and checks the status and the shape of the body (keys and types; values such as the
SHA-256 differ). Values below are what the local platform's aws-us-west-2 answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Authorization = Literal["valid token", "wrong token", "not bearer", "none"]

IRIS_SETOSA = [5.1, 3.5, 1.4, 0.2]
REGION = "aws-us-west-2"
MODEL = "iris-classifier"
SHA256 = "3f1c0d5a9b8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"


@dataclass(frozen=True)
class Example:
    """One exchange. ``authorization``: which Authorization header the request carries;
    ``instances_repeated``: the body is ``{"instances": [IRIS_SETOSA] * n}`` (too long to print); ``zero_bytes``:
    the body is that many zero bytes; ``before_rollout``: answered while no version is served; ``until_status``:
    sent again and again, as fast as possible, until it answers ``status`` (the rate limit)."""

    name: str
    summary: str
    method: str
    path: str
    status: int
    response: dict | str
    authorization: Authorization = "valid token"
    body: dict | None = None
    instances_repeated: int = 0
    zero_bytes: int = 0
    before_rollout: bool = False
    until_status: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # response headers that matter to the caller


EXAMPLES = (
    Example(
        "ready-before-rollout",
        "no version verified yet",
        "GET",
        "/ready",
        503,
        {
            "ready": False,
            "region": REGION,
            "model": MODEL,
            "rollout": None,
            "refused": None,
            "reason": f"no version of {MODEL} rolled out in {REGION} yet "
            f"(s3://mlp-models-us-west-2/models/{MODEL}/_current.json)",
        },
        authorization="none",
        before_rollout=True,
    ),
    Example(
        "predict-not-ready",
        "no version verified yet",
        "POST",
        "/predict",
        503,
        {"detail": f"no version of {MODEL} rolled out in {REGION} yet (s3://mlp-models-us-west-2/models/{MODEL}/_current.json)"},
        body={"instances": [IRIS_SETOSA]},
        before_rollout=True,
    ),
    Example("health", "the process answers", "GET", "/health", 200, {"status": "alive", "region": REGION},
            authorization="none"),
    Example(
        "ready",
        "a verified version is served",
        "GET",
        "/ready",
        200,
        {
            "ready": True,
            "region": REGION,
            "model": MODEL,
            "rollout": {"version": "1", "set_by": "replication", "set_at": "2026-11-02T09:14:03+00:00"},
            "refused": None,
            "version": "1",
            "sha256": SHA256,
            "signed_by": "local-release-1",
            "verified_at": 1793610843.52,
        },
        authorization="none",
    ),
    Example(
        "predict",
        "predictions from the served version",
        "POST",
        "/predict",
        200,
        {"predictions": [0, 2], "model": MODEL, "version": "1", "region": REGION},
        body={"instances": [IRIS_SETOSA, [6.7, 3.0, 5.2, 2.3]]},
    ),
    Example(
        "predict-no-token",
        "no Authorization header",
        "POST",
        "/predict",
        401,
        {"detail": "missing Authorization header: send Authorization: Bearer <token>"},
        authorization="none",
        body={"instances": [IRIS_SETOSA]},
        headers={"WWW-Authenticate": 'Bearer realm="model-serving"'},
    ),
    Example(
        "predict-not-bearer",
        "an Authorization header that is not a bearer token",
        "POST",
        "/predict",
        401,
        {"detail": "the Authorization header is not a bearer token: send Authorization: Bearer <token>"},
        authorization="not bearer",
        body={"instances": [IRIS_SETOSA]},
        headers={"WWW-Authenticate": 'Bearer realm="model-serving", error="invalid_request"'},
    ),
    Example(
        "predict-wrong-token",
        "a token the service does not hold",
        "POST",
        "/predict",
        403,
        {"detail": "the bearer token is not one this service accepts"},
        authorization="wrong token",
        body={"instances": [IRIS_SETOSA]},
    ),
    Example(
        "predict-bad-body",
        "a body that is not the schema",
        "POST",
        "/predict",
        422,
        {"detail": [{"loc": ["body", "instances", 0, 1], "msg": "Input should be a valid number, unable to parse "
                     "string as a number", "type": "float_parsing", "input": "'wide'"}]},
        body={"instances": [[5.1, "wide", 1.4, 0.2]]},
    ),
    Example(
        "predict-bad-instances",
        "instances the model refuses (here, 2 features instead of 4)",
        "POST",
        "/predict",
        422,
        {"detail": "bad instances: 'X has 2 features, but LogisticRegression is expecting 4 features as input.'"},
        body={"instances": [[5.1, 3.5]]},
    ),
    Example(
        "predict-too-many-instances",
        "more instances than --max-instances",
        "POST",
        "/predict",
        413,
        {"detail": "1001 instances are over the limit of 1000 (--max-instances)", "limit": 1000, "value": 1001},
        instances_repeated=1001,
    ),
    Example(
        "predict-body-too-large",
        "a body larger than --max-body-bytes",
        "POST",
        "/predict",
        413,
        {"detail": "a body of 1048577 bytes is over the limit of 1048576 bytes (--max-body-bytes)",
         "limit": 1048576, "value": 1048577},
        zero_bytes=2**20 + 1,
    ),
    Example(
        "metrics",
        "Prometheus text",
        "GET",
        "/metrics",
        200,
        "# HELP mlp_serving_capacity Predictions that run at once\n"
        "# TYPE mlp_serving_capacity gauge\n"
        f'mlp_serving_capacity{{model="{MODEL}",region="{REGION}"}} 32.0\n'
        "# HELP mlp_serving_inflight_requests Predict requests running or waiting\n"
        "# TYPE mlp_serving_inflight_requests gauge\n"
        f'mlp_serving_inflight_requests{{model="{MODEL}",region="{REGION}"}} 0.0\n'
        "# HELP mlp_serving_rejected_requests_total Requests refused before a prediction, by reason\n"
        "# TYPE mlp_serving_rejected_requests_total counter\n"
        f'mlp_serving_rejected_requests_total{{model="{MODEL}",reason="forbidden",region="{REGION}"}} 1.0\n',
    ),
    Example(
        "metrics-no-token",
        "no Authorization header",
        "GET",
        "/metrics",
        401,
        {"detail": "missing Authorization header: send Authorization: Bearer <token>"},
        authorization="none",
        headers={"WWW-Authenticate": 'Bearer realm="model-serving"'},
    ),
    Example("unknown-path", "a path the service does not serve", "GET", "/docs", 404, {"detail": "Not Found"},
            authorization="none"),
    Example("wrong-method", "a method the path does not take", "GET", "/predict", 405,
            {"detail": "Method Not Allowed"}),
    Example(
        "predict-rate-limited",
        "more requests than --rate-limit and --rate-burst allow for this token",
        "POST",
        "/predict",
        429,
        {"detail": "rate limit of 50 requests per second (burst 100) for this token exceeded: retry in 1 s"},
        body={"instances": [IRIS_SETOSA]},
        until_status=True,
        headers={"Retry-After": "1"},
    ),
)  # fmt: skip
