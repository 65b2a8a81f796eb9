"""Keeps credentials out of logs, metrics, status and events."""

import re
from urllib.parse import urlsplit, urlunsplit

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


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


def redact_text(text: str) -> str:
    """Redact every URL credential found anywhere in free text (error messages, GStreamer debug)."""
    return _USERINFO.sub(r"\g<scheme>***@", text)
