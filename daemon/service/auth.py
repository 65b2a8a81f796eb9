"""http.auth: who may use the HTTP endpoints. A bearer token (from an environment variable, as a systemd
EnvironmentFile sets it, or from a file) or HTTP basic auth with an scrypt-hashed password.

The console sends the bearer token as the ``argusd_token`` cookie (set by the page itself, SameSite=Strict),
because <img> and EventSource cannot send an Authorization header."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from daemon.config.models import ConfigError, HttpAuthConfig

TOKEN_COOKIE = "argusd_token"  # noqa: S105 (the cookie's name, not a secret)
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # ~16 MiB and ~50 ms per check on a small CPU
ACCEPTED_KEPT = 16  # accepted basic credentials remembered
OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # probes from the supervisor or load balancer


def hash_password(password: str) -> str:
    """The form http.auth.password_hash takes: scrypt$N$r$p$salt$hash (base64)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def _password_matches(password: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    expected = base64.b64decode(digest)
    actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                            maxmem=128 * 1024 * 1024, dklen=len(expected))
    return hmac.compare_digest(actual, expected)


@dataclass(frozen=True, slots=True)
class HttpAuth:
    """The credentials one request must carry; built once at start from http.auth."""

    token: str | None = None
    user: str | None = None
    password_hash: str | None = None
    # Digests of Authorization headers that passed, so the console's frequent requests do not each cost an
    # scrypt; bounded, and only headers that carried the right password ever enter it.
    _accepted: set[bytes] = field(default_factory=set, compare=False, repr=False)

    @classmethod
    def from_config(cls, config: HttpAuthConfig, environ: Mapping[str, str] | None = None) -> HttpAuth:
        """Raises ConfigError (one line) when the token's variable or file is missing or empty."""
        environ = os.environ if environ is None else environ
        if config.token_env is not None:
            token = environ.get(config.token_env, "").strip()
            if not token:
                raise ConfigError(f"http.auth.token_env: the environment variable {config.token_env} is not set")
            return cls(token=token)
        if config.token_file is not None:
            try:
                token = Path(config.token_file).read_text(encoding="utf-8").strip()
            except OSError as error:
                raise ConfigError(f"http.auth.token_file: cannot read {config.token_file}: "
                                  f"{error.strerror or error}") from None
            if not token:
                raise ConfigError(f"http.auth.token_file: {config.token_file} is empty")
            return cls(token=token)
        return cls(user=config.user, password_hash=config.password_hash)

    @property
    def scheme(self) -> str:
        return "Bearer" if self.token is not None else "Basic"

    def allows(self, authorization: str | None, cookie_token: str | None) -> bool:
        """Whether a request with this Authorization header (and console cookie) is let in."""
        if self.token is not None:
            offered = cookie_token or ""
            if authorization and authorization[:7].lower() == "bearer ":
                offered = authorization[7:].strip()
            return hmac.compare_digest(offered.encode(), self.token.encode())
        if not authorization or authorization[:6].lower() != "basic ":
            return False
        try:
            user, _, password = base64.b64decode(authorization[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        digest = hashlib.sha256(authorization.encode()).digest()
        if digest in self._accepted:
            return True
        if self.password_hash is None or not hmac.compare_digest(user.encode(), (self.user or "").encode()):
            return False
        if not _password_matches(password, self.password_hash):
            return False
        if len(self._accepted) >= ACCEPTED_KEPT:
            self._accepted.clear()
        self._accepted.add(digest)
        return True
