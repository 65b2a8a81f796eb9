"""Keeps credentials out of logs, metrics, status and events."""

import re
from urllib.parse import unquote, urlsplit, urlunsplit

# Userinfo runs to the last '@' before the host's first '/': an unencoded '@' in a password stays hidden.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s]+@")
_MIN_SECRET_LENGTH = 3  # shorter passwords would blank out ordinary words in error text


def redact_url(url: str) -> str:
    """Return ``url`` with any user:password part replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub(r"\g<scheme>***@", url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def url_secrets(url: str) -> tuple[str, ...]:
    """The password of ``url`` as written and percent-decoded, for scrubbing text that quotes it bare."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return ()
    if not password:
        return ()
    return tuple(s for s in {password, unquote(password)} if len(s) >= _MIN_SECRET_LENGTH)


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Redact every URL credential found anywhere in free text (error messages, GStreamer debug), and any
    of the given ``secrets`` quoted on their own."""
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
