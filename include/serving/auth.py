"""The bearer tokens that ``/predict`` and ``/metrics`` accept, read from a token file.

The token file holds one token per line (blank lines are skipped), so a new token can be added, handed to the
clients, and the old line removed, without a restart and without a moment where no token works. The file is
looked at again at most every ``RELOAD_SECONDS``, and read again when its modification time or size changed;
a file that becomes unreadable or empty keeps the tokens read before (and logs why), so a half-written
rotation never locks every client out.

Only SHA-256 digests of the tokens are kept, and a presented token is compared with every one of them by
``hmac.compare_digest``: the time taken says nothing about how much of a token matched, nor which line.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from pathlib import Path

MIN_TOKEN_CHARS = 16
RELOAD_SECONDS = 2.0

log = logging.getLogger(__name__)


class TokenFileError(ValueError):
    """The token file is missing, unreadable or holds no usable token; the message names the file and the line."""


def digest(token: str) -> bytes:
    """The SHA-256 of ``token``: what is kept and compared, and the key of the token's rate limit."""
    return hashlib.sha256(token.encode()).digest()


def read_tokens(path: Path) -> list[bytes]:
    """The digests of the tokens in ``path``, one token a line; ``TokenFileError`` naming what is wrong.

    A token is at least ``MIN_TOKEN_CHARS`` characters with no space inside. Error messages never contain a
    token, only the line number.
    """
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise TokenFileError(f"cannot read the token file {path}: {reason}") from None
    digests = []
    for number, line in enumerate(text.splitlines(), start=1):
        token = line.strip()
        if not token:
            continue
        if len(token) < MIN_TOKEN_CHARS or any(character.isspace() for character in token):
            raise TokenFileError(
                f"line {number} of the token file {path} is not a token: a token is at least {MIN_TOKEN_CHARS} "
                "characters with no space inside (make one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')"
            )
        digests.append(digest(token))
    if not digests:
        raise TokenFileError(f"the token file {path} holds no token (one token a line)")
    return digests


class BearerTokens:
    """The tokens of a token file, followed as the file changes; ``match`` says which one a request presents."""

    def __init__(self, path: Path):
        self.path = path
        self._digests = read_tokens(path)
        self._stamp = self._stamp_of_file()
        self._checked = time.monotonic()

    def match(self, token: str) -> bytes | None:
        """The digest of ``token`` if the file holds it, else None; compared in constant time with every token."""
        self._follow_file()
        presented = digest(token)
        matches = [hmac.compare_digest(presented, known) for known in self._digests]  # all of them, always
        return presented if any(matches) else None

    def _stamp_of_file(self) -> tuple[int, int] | None:
        try:
            status = self.path.stat()
        except OSError:
            return None
        return status.st_mtime_ns, status.st_size

    def _follow_file(self) -> None:
        now = time.monotonic()
        if now - self._checked < RELOAD_SECONDS:
            return
        self._checked = now
        stamp = self._stamp_of_file()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._digests = read_tokens(self.path)
        except TokenFileError as exc:
            log.warning("%s; the tokens read before stay valid", exc)
            return
        log.warning("read the token file %s again: %d tokens", self.path, len(self._digests))


def ensure_token_file(path: Path) -> str:
    """The first token of the token file ``path``, after writing one random token there (mode 600) if the file
    does not exist yet. For the local platform and the tests; a deployment makes its tokens itself."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as output:
            output.write(secrets.token_urlsafe(32) + "\n")
    read_tokens(path)  # a file made by hand is checked like the server checks it
    return next(line.strip() for line in path.read_text().splitlines() if line.strip())
