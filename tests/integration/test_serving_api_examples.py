"""Every example of the serving API reference (``include.serving.examples``, shown in ``docs/api/serving.md``)
against a real ``python -m include.serving`` process serving a signed model from the emulated S3 (moto): each
request gets the documented status, the documented headers, and a body of the documented shape (the same keys
and JSON types; values such as SHA-256s and times differ). The page must show each example as this module
renders it: the curl command and the answer."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest

from include.catalogue import REPO_ROOT, load_catalogue
from include.serving.examples import EXAMPLES, IRIS_SETOSA, REGION, Example
from localdev.demo import demo_model_files, release_keys, trusted_keys_dir
from localdev.processes import free_port
from tests.include.serving.tokens import token_file_in
from tests.integration.releases import release

pytestmark = pytest.mark.integration
PAGE = REPO_ROOT / "docs" / "api" / "serving.md"
MODEL = "api-examples"
WRONG_TOKEN = "not-a-token-of-this-service"
AUTHORIZATION = {
    "valid token": '"Authorization: Bearer $TOKEN"',
    "wrong token": f'"Authorization: Bearer {WRONG_TOKEN}"',
    "not bearer": '"Authorization: Basic dXNlcjpwYXNz"',
}
MOST_ATTEMPTS = 2000  # an ``until_status`` example gives up after this many requests


def curl_command(example: Example) -> str:
    """The example as the page shows it: a curl command against ``$SERVING`` with the token in ``$TOKEN``."""
    words = ["curl -sS -i"] + ([f"-X {example.method}"] if example.method != "GET" else [])
    words.append(f'"$SERVING{example.path}"')
    options = [f"-H {AUTHORIZATION[example.authorization]}"] if example.authorization != "none" else []
    prefix = ""
    if example.body is not None:
        options += ['-H "Content-Type: application/json"', f"-d {shlex.quote(json.dumps(example.body))}"]
    elif example.instances_repeated:
        body = f'json.dumps({{"instances": [{IRIS_SETOSA}] * {example.instances_repeated}}})'
        prefix = f"python3 -c {shlex.quote(f'import json; print({body})')} |\n  "
        options += ['-H "Content-Type: application/json"', "--data-binary @-"]
    elif example.zero_bytes:
        prefix = f"head -c {example.zero_bytes} /dev/zero |\n  "
        options += ['-H "Content-Type: application/json"', "--data-binary @-"]
    command = prefix + " ".join(words) + "".join(f" \\\n  {option}" for option in options)
    if example.until_status:
        command = "# once this token has sent more than --rate-burst requests at once:\n" + command
    return command


def answer_text(example: Example) -> str:
    """The documented answer: status line, the headers that matter, and the body."""
    lines = [f"HTTP/1.1 {example.status} {HTTPStatus(example.status).phrase}"]
    lines += [f"{name}: {value}" for name, value in example.headers.items()]
    body = example.response if isinstance(example.response, str) else json.dumps(example.response, indent=2) + "\n"
    return "\n".join(lines) + "\n\n" + body


def shape(value: object) -> object:
    """The keys and JSON types of a body: what the documented and the real answer must share."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    return "number" if isinstance(value, int | float) else type(value).__name__


def send(client: httpx.Client, token: str, example: Example) -> httpx.Response:
    headers = {
        "valid token": {"Authorization": f"Bearer {token}"},
        "wrong token": {"Authorization": f"Bearer {WRONG_TOKEN}"},
        "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
        "none": {},
    }[example.authorization]
    content = None
    if example.instances_repeated:
        content = json.dumps({"instances": [IRIS_SETOSA] * example.instances_repeated}).encode()
    elif example.zero_bytes:
        content = bytes(example.zero_bytes)
    if content is not None:
        headers["Content-Type"] = "application/json"
    return client.request(example.method, example.path, headers=headers, json=example.body, content=content)


def check(answer: httpx.Response, example: Example) -> None:
    where = f"example {example.name}: {answer.status_code} {answer.text[:300]}"
    assert answer.status_code == example.status, where
    for name, value in example.headers.items():
        assert answer.headers.get(name) == value, where
    if isinstance(example.response, str):
        documented = [line for line in example.response.splitlines() if line.startswith("# TYPE")]
        assert set(documented) <= set(answer.text.splitlines()), where
    else:
        assert shape(answer.json()) == shape(example.response), where


def test_the_page_shows_every_example_as_it_is_sent():
    page = PAGE.read_text()
    for example in EXAMPLES:
        assert f"```bash\n{curl_command(example)}\n```" in page, f"{PAGE.name} lacks example {example.name}"
        assert f"```http\n{answer_text(example)}```" in page, f"{PAGE.name} lacks the answer of {example.name}"


def test_every_example_gets_its_documented_answer(local_clouds, tmp_path):
    region = load_catalogue().region(REGION)
    token_file, _ = token_file_in(tmp_path)
    token = token_file.read_text().strip()
    port = free_port()
    command = [sys.executable, "-m", "include.serving", "--region", REGION, "--model", MODEL]
    command += ["--trusted-keys", str(trusted_keys_dir(tmp_path)), "--token-file", str(token_file)]
    command += ["--port", str(port), "--reload-interval", "0.2", "--verify-interval", "0"]
    key = release_keys(tmp_path)
    log: Path = tmp_path / "serving.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            wait(lambda: answers(client, "/health", process, log), 60, "the process to answer")
            for example in (e for e in EXAMPLES if e.before_rollout):
                check(send(client, token, example), example)
            release(region, MODEL, "1", demo_model_files(), key)
            wait(lambda: client.get("/ready").status_code == 200, 20, "ready after the rollout")
            for example in (e for e in EXAMPLES if not e.before_rollout):
                answer = send(client, token, example)
                for _ in range(MOST_ATTEMPTS if example.until_status else 0):
                    if answer.status_code == example.status:
                        break
                    answer = send(client, token, example)
                check(answer, example)
    finally:
        process.terminate()
        process.wait(10)
    assert "Traceback" not in log.read_text(), log.read_text()


def answers(client: httpx.Client, path: str, process: subprocess.Popen, log: Path) -> bool:
    try:
        return client.get(path).status_code == 200
    except httpx.TransportError:
        assert process.poll() is None, log.read_text()
        return False


def wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not within {timeout}s"
        time.sleep(0.1)
