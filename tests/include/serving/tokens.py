"""A token file for a serving app under test, and the headers that present its token."""

from __future__ import annotations

from pathlib import Path

from include.serving.auth import ensure_token_file


def token_file_in(directory: Path) -> tuple[Path, dict[str, str]]:
    """The token file ``directory/serving-tokens`` (made once, one random token) and its Authorization header."""
    path = directory / "serving-tokens"
    return path, {"Authorization": f"Bearer {ensure_token_file(path)}"}
