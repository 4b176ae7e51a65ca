"""Credentials never leave the process: URLs are masked before they reach a message or a results file.

A URL may carry a password (`bolt://neo4j:pw@host`, `https://user:pw@proxy/v1`), a token as its user name
(`https://TOKEN@host`), or a key in its query (`?api_key=...`). `mask_url` hides those parts and keeps what
a reader needs to recognise the endpoint (scheme, user name, host, port, path). This module sits in data/,
the lowest layer, so every package can use the one rule.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

MASK = "***"
# query parameters whose values are credentials (api_key, access_token, password, sig, ...)
_SECRET_QUERY_KEY = re.compile(r"(pass(word)?|pwd|secret|token|key|auth|sig(nature)?|credentials?)$", re.IGNORECASE)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
# what urlsplit cannot parse: hide everything between '://' and the last '@' of the authority
_USERINFO = re.compile(r"(://)[^/\s]*@")
_BARE_USERINFO = re.compile(r"[^/\s]*@")


def mask_url(url: str | None) -> str | None:
    """The URL with its password (or token-like user name) and secret query values replaced by ***."""
    if not url or "@" not in url and "://" not in url:
        return url
    if "://" not in url:  # malformed ("bolt//user:pw@host"): hide whatever stands before the '@'
        return _BARE_USERINFO.sub(f"{MASK}@", url, count=1)
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            user, has_password, _ = userinfo.partition(":")
            # a user name alone is often a token (https://TOKEN@host): hide it too
            netloc = f"{user}:{MASK}@{host}" if has_password and user else f"{MASK}@{host}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(_SECRET_QUERY_KEY.search(k) for k, _ in pairs):
                query = urlencode([(k, MASK if _SECRET_QUERY_KEY.search(k) else v) for k, v in pairs], safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # an unparsable URL (a bad port, brackets): mask the whole authority's user part
        return _USERINFO.sub(rf"\1{MASK}@", url)


def mask_text(text: str) -> str:
    """Every URL inside a free text (an exception message, a log line) masked."""
    return _URL.sub(lambda m: mask_url(m.group(0)) or "", text) if "://" in text else text


def mask_urls(value: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings) with every URL in its strings masked."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_urls(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_urls(v) for v in value)
    return value


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """(url without user:password, user, password): for drivers that take credentials apart from the address."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None, None
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, has_password, password = userinfo.partition(":")
    return (urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), unquote(user) or None,
            unquote(password) if has_password else None)
