"""The checked-in OpenAPI document of the serving API (``docs/api/serving-openapi.json``) is what the code
generates, and declares the security scheme and every error a caller can get."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from include.serving.app import openapi_document

REPO_ROOT = Path(__file__).resolve().parents[3]
CHECKED_IN = REPO_ROOT / "docs" / "api" / "serving-openapi.json"
REGENERATE = "python -m include.serving openapi > docs/api/serving-openapi.json"


def test_the_checked_in_document_is_the_generated_one():
    generated = subprocess.run(
        [sys.executable, "-m", "include.serving", "openapi"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert generated.returncode == 0, generated.stderr
    assert json.loads(generated.stdout) == openapi_document()
    assert CHECKED_IN.read_text() == generated.stdout, f"{CHECKED_IN} is out of date; regenerate it: {REGENERATE}"


def test_the_document_declares_the_token_and_every_error():
    document = openapi_document()
    assert document["components"]["securitySchemes"]["bearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "a token of the service's --token-file",
    }
    operations = {path: next(iter(item.values())) for path, item in document["paths"].items()}
    assert set(operations) == {"/health", "/ready", "/predict", "/metrics"}
    assert {path for path, operation in operations.items() if "security" in operation} == {"/predict", "/metrics"}
    assert set(operations["/predict"]["responses"]) == {"200", "401", "403", "405", "413", "422", "429", "503"}
    assert set(operations["/metrics"]["responses"]) == {"200", "401"}
    assert set(operations["/ready"]["responses"]) == {"200", "503"}
    for path, operation in operations.items():
        for status, response in operation["responses"].items():
            [content] = response["content"].values()
            assert content["examples"], f"{path} {status} has no example"
    assert document["components"]["responses"]["NotFound"]["content"]["application/json"]["example"] == {
        "detail": "Not Found"
    }
