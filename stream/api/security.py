"""`streamrec serve`'s two security settings: a key for the write route and a CORS allow-list.

- `api.write_api_key`: POST /clicks needs the key in its `X-API-Key` header; a request without it
  or with another key gets 401 and a one-line JSON `detail`, before its body is read. The key is
  compared in constant time (`hmac.compare_digest` on bytes). Read routes never ask for it.
- `api.cors_allow_origins`: Starlette's CORSMiddleware, outermost, so every answer to an allowed
  origin carries `Access-Control-Allow-Origin` (a 401 too, so a page can read why) and preflights
  for POST /clicks with `Content-Type` and `X-API-Key` are answered; other origins get no CORS headers.
  Unset, no middleware is added: no answer carries CORS headers.
"""

from __future__ import annotations

import hmac

from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.params import Depends as DependsParam
from fastapi.security import APIKeyHeader
from starlette.middleware.cors import CORSMiddleware

from streamrec.config.settings import ApiSettings

KEY_HEADER = "X-API-Key"
CORS_MAX_AGE_S = 600
"""How long a browser may reuse a preflight's answer."""

_key_header = APIKeyHeader(name=KEY_HEADER, auto_error=False,
                           description="api.write_api_key; only POST /clicks asks for it, and only when it is set.")


def write_guard(settings: ApiSettings) -> list[DependsParam]:
    """The dependencies of the write route: a key check when `api.write_api_key` is set, else none."""
    if settings.write_api_key is None:
        return []
    expected = settings.write_api_key.get_secret_value().encode()

    def require_key(given: str | None = Security(_key_header)) -> None:
        if given is None:
            raise HTTPException(401, f"POST /clicks needs the {KEY_HEADER} header (api.write_api_key is set)",
                                headers={"WWW-Authenticate": "APIKey"})
        # Starlette decodes header bytes as latin-1: encoding back gives the bytes sent, compared whole.
        if not hmac.compare_digest(given.encode("latin-1"), expected):
            raise HTTPException(401, f"wrong {KEY_HEADER}", headers={"WWW-Authenticate": "APIKey"})

    return [Depends(require_key)]


def add_cors(app: FastAPI, settings: ApiSettings) -> None:
    """Answer the allowed origins' requests and preflights with CORS headers; nothing when the list is empty.

    Add it after every other middleware: the last added is the outermost, so its headers reach every answer."""
    if not settings.cors_allow_origins:
        return
    app.add_middleware(
        CORSMiddleware, allow_origins=list(settings.cors_allow_origins), allow_methods=["GET", "POST"],
        allow_headers=["Content-Type", KEY_HEADER], allow_credentials=False, max_age=CORS_MAX_AGE_S,
    )
