"""Keeps credentials out of logs, metrics, status and events."""

import re
from urllib.parse import unquote

# Userinfo runs to the last '@' before the host's first '/': an unencoded '@' in a password stays hidden.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s]+@")
_SCHEME = re.compile(r"\s*[a-zA-Z][a-zA-Z0-9+.-]*://")
_MIN_SECRET_LENGTH = 3  # shorter passwords would blank out ordinary words in error text


def _userinfo_span(url: str) -> tuple[int, int] | None:
    """Where the user:password part of ``url`` is, read generously: up to the last '@' before the first
    '/', else (a password with an unencoded '/') up to the last '@' anywhere. String operations only."""
    scheme = _SCHEME.match(url)
    if scheme is None:
        return None
    start = scheme.end()
    rest = url[start:]
    authority = rest.split("/", 1)[0]
    if "@" in authority:
        return start, start + authority.rindex("@")
    if "@" in rest:  # ambiguous: hide more than needed rather than part of a password
        return start, start + rest.rindex("@")
    return None


def redact_url(url: str) -> str:
    """Return ``url`` with any user:password part replaced by ``***``. Never raises: any string is shown,
    including URLs that do not parse (an out-of-range port, a password with an unencoded '#', '?' or '/')."""
    span = _userinfo_span(url)
    if span is None:
        return url
    return f"{url[:span[0]]}***{url[span[1]:]}"


def url_secrets(url: str) -> tuple[str, ...]:
    """The password of ``url`` as written and percent-decoded, for scrubbing text that quotes it bare."""
    span = _userinfo_span(url)
    if span is None:
        return ()
    password = url[span[0]:span[1]].partition(":")[2]
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
