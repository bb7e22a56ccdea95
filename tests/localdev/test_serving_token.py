"""The local platform's serving token: made once in the state folder (mode 600), passed to every serving
process as ``--token-file``, and handed to the probes as each region's ``connections.serving`` password."""

from __future__ import annotations

import json

from include.catalogue import load_catalogue
from include.serving.auth import BearerTokens, ensure_token_file
from localdev.serving import serving_commands, serving_connection_env, token_file


def test_every_serving_process_gets_the_token_file_and_every_probe_its_token(tmp_path):
    catalogue = load_catalogue()
    tokens = token_file(tmp_path)
    token = ensure_token_file(tokens)
    assert tokens.stat().st_mode & 0o777 == 0o600
    assert ensure_token_file(tokens) == token, "made once, kept across make demo runs"
    assert BearerTokens(tokens).match(token) is not None
    for argv in serving_commands(catalogue, "m", tmp_path / "trusted-keys", tokens).values():
        assert argv[argv.index("--token-file") + 1] == str(tokens)
    connections = serving_connection_env(catalogue, token)
    assert set(connections) == {f"AIRFLOW_CONN_{r.connections.serving.upper()}" for r in catalogue.regions}
    assert all(json.loads(value) == {"conn_type": "generic", "password": token} for value in connections.values())
