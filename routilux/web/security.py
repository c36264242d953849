"""The monitor's security rules, applied to every request before any endpoint runs.

- **Binding.** Loopback by default; any other address needs a token
  (:func:`check_binding`).
- **Token.** With a token, every API call (``/api/...`` and ``/metrics``) needs
  ``Authorization: Bearer <token>``; the static page itself holds no data.
- **Same origin.** Without a token, a state-changing call (POST) needs the custom
  header ``X-Routilux-Request`` — a page of another site cannot send it without a
  CORS preflight, which this server never grants — and, when the browser says where
  the request comes from (``Origin``), it must be this server.
- **Host.** On loopback the ``Host`` header must name this server (loopback name and
  port): a site that rebinds its DNS name to 127.0.0.1 gets nothing.
- **Size.** Request bodies larger than ``max_body`` bytes are refused (413).
- **Headers.** Every response says ``nosniff``, no framing, no referrer; pages get a
  Content-Security-Policy that allows only this server's own files.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from dataclasses import dataclass, field

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routilux.exceptions import ConfigurationError
from routilux.web.errors import ApiError, error_response

TOKEN_ENV = "ROUTILUX_TOKEN"
CSRF_HEADER = "x-routilux-request"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(token: str | None) -> str | None:
    """The token: the argument, else ``ROUTILUX_TOKEN``, else None."""
    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    if token is not None and len(token) < 16:
        raise ConfigurationError(
            "the monitor's token must be at least 16 characters long "
            "(make one with: python -c 'import secrets; print(secrets.token_urlsafe())')"
        )
    return token


def check_binding(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token."""
    if not is_loopback(host) and token is None:
        raise ConfigurationError(
            f"binding the monitor to {host!r} exposes it beyond this machine: give a "
            f"token (--token or {TOKEN_ENV}), or bind 127.0.0.1"
        )


@dataclass
class Policy:
    """What :class:`Guard` enforces (see the module docstring)."""

    token: str | None
    loopback: bool
    max_body: int = 1 << 20
    allowed_hosts: set[str] = field(default_factory=set)

    def allow_port(self, host: str, port: int) -> None:
        """Accept the loopback names of this server once its port is known."""
        bound = f"[{host}]" if ":" in host else host
        for name in {"127.0.0.1", "localhost", "[::1]", bound.lower()}:
            self.allowed_hosts.add(f"{name}:{port}")
            if port == 80:
                self.allowed_hosts.add(name)


class Guard:
    """ASGI middleware enforcing a :class:`Policy` on every HTTP request."""

    def __init__(self, app: ASGIApp, policy: Policy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._with_headers(scope, send)
        try:
            self._check(scope)
        except ApiError as exc:
            await error_response(exc.status, exc.message, exc.headers)(scope, receive, send)
            return
        await self.app(scope, self._bounded(receive), send)

    def _check(self, scope: Scope) -> None:
        policy = self.policy
        headers = Headers(scope=scope)
        host = headers.get("host", "").lower()
        if policy.loopback and host not in policy.allowed_hosts:
            raise ApiError(421, f"this server does not answer to Host {host!r}")
        path: str = scope["path"]
        api = path.startswith("/api/") or path == "/metrics"
        if api and policy.token is not None:
            given = headers.get("authorization", "")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                value.strip().encode(), policy.token.encode()
            ):
                raise ApiError(
                    401,
                    "this API needs the monitor's token: send 'Authorization: Bearer <token>'",
                    {"WWW-Authenticate": "Bearer"},
                )
        if scope["method"] not in SAFE_METHODS:
            if policy.token is None:  # with a token, the bearer header proves the caller
                if CSRF_HEADER not in headers:
                    raise ApiError(
                        403,
                        "state-changing calls need the header 'X-Routilux-Request: 1' "
                        "(cross-site requests are refused)",
                    )
                origin = headers.get("origin")
                if origin is not None and origin.lower() not in (
                    f"http://{host}",
                    f"https://{host}",
                ):
                    raise ApiError(403, f"cross-origin request from {origin!r} refused")
            length = headers.get("content-length")
            if length is not None:
                if not length.isdigit():
                    raise ApiError(400, "Content-Length must be a number of bytes")
                if int(length) > policy.max_body:
                    raise ApiError(413, f"request body over {policy.max_body} bytes")

    def _bounded(self, receive: Receive) -> Receive:
        """Count body bytes as they come (a chunked body has no Content-Length)."""
        limit = self.policy.max_body
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise ApiError(413, f"request body over {limit} bytes")
            return message

        return bounded

    @staticmethod
    def _with_headers(scope: Scope, send: Send) -> Send:
        page = not (scope["path"].startswith("/api/") or scope["path"] == "/metrics")

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(_COMMON_HEADERS)
                if page:
                    headers.append((b"content-security-policy", CSP.encode()))
                else:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        return sending
