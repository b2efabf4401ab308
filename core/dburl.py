"""A database URL as logs and messages may show it: no password, wherever it was given."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL, make_url

__all__ = ["safe_url"]


def safe_url(url: str | URL | Any) -> str:
    """``url`` without secrets: the password of ``user:PASSWORD@`` and the values of query
    parameters holding one (``?password=``, ``sslpassword=``, ``passfile=``) are ``***``
    (SQLAlchemy's ``hide_password`` only hides the first). A plain file path is returned as
    it is; a URL that cannot be parsed is not shown at all."""
    if isinstance(url, str) and "://" not in url:
        return url
    try:
        u = make_url(url) if isinstance(url, str) else url
        u = u.set(query={k: ("***" if "pass" in k.lower() else v) for k, v in u.query.items()})
        return str(u.render_as_string(hide_password=True)).replace("%2A%2A%2A", "***")
    except Exception:
        return "(database URL not shown: it could not be parsed)"
