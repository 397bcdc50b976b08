"""Who may do what: API keys, the chat's sign-in, CORS, rate limits, security headers.

With ``QA_API_KEYS_SHA256`` set (the README's "Access" section says it in full):

- Every path needs a listed key except the probes and the API description
  (``PUBLIC_PATHS``), the static assets and the sign-in page.
- A system sends its key in ``X-API-Key`` (only digests are stored; compared in constant
  time). It may use every path.
- A person signs in once at ``/login`` with a key; the browser then holds a signed
  session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) naming that key's
  digest. The session may use the chat (``/``, ``/p/<id>``) and what the chat calls
  (``CHAT_API``), nothing else; it ends when its key is no longer listed.
- The rate limit counts per valid key; everything else (no key, a wrong key, a signed-in
  attempt) counts per address, so guessing keys is limited like any other request.

Without keys the service is open (local use) and nobody signs in. Every answer carries
the security headers of ``SECURITY_HEADERS``; pages a Content-Security-Policy that
allows the service's own script and style sheet and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from werkzeug.middleware.proxy_fix import ProxyFix

from ..config import Settings
from ..errors import QAError

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
#: Open to anyone, keys or not: load balancers' probes and the API's description.
PUBLIC_PATHS = frozenset({"/api/health", "/api/ready", "/api/openapi.json"})
#: What a signed-in chat session may call besides the pages: what chat.js uses.
CHAT_API = (
    ("POST", "/api/ask"),
    ("GET", "/api/facets"),
    ("GET", "/api/passages/"),
    ("GET", "/api/conversations/"),
    ("DELETE", "/api/conversations/"),
)
CHAT_PAGES = ("/", "/p/")

#: Pages may load the service's own script, style sheet and images, and call its API;
#: nothing inline, nothing from elsewhere, no frames, forms only to the service.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class Unauthorized(QAError):
    status = 401
    code = "unauthorized"


class Forbidden(QAError):
    status = 403
    code = "forbidden"


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def key_is_valid(key: str | None, digests: tuple[str, ...]) -> bool:
    return bool(key) and digest_is_listed(key_digest(key or ""), digests)


def digest_is_listed(given: str, digests: tuple[str, ...]) -> bool:
    # Check every digest so the time taken does not depend on which one matched.
    matched = False
    for digest in digests:
        matched |= hmac.compare_digest(given, digest.lower())
    return matched


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def _chat_may(method: str, path: str) -> bool:
    if method in ("GET", "HEAD") and (path == "/" or path.startswith("/p/")):
        return True
    return any(method == m and path.startswith(p) for m, p in CHAT_API)


def _identify(digests: tuple[str, ...]) -> None:
    """Who sends this request: ``g.qa_key`` is the valid key's digest, or None, and
    ``g.qa_by_session`` whether it came with the chat's session rather than a header."""
    g.qa_key = None
    g.qa_by_session = False
    if not digests:
        return
    key = request.headers.get(API_KEY_HEADER)
    if key is not None:
        if key_is_valid(key, digests):
            g.qa_key = key_digest(key)
        return  # a wrong key is no key, whatever the cookie says
    signed_in = session.get("key")
    if isinstance(signed_in, str) and digest_is_listed(signed_in, digests):
        g.qa_key = signed_in
        g.qa_by_session = True


def _client_key() -> str:
    """What the rate limit counts by: a valid key, else the client's address."""
    key = getattr(g, "qa_key", None)
    return f"key:{key}" if key else f"ip:{request.remote_addr or '-'}"


def install(app: Flask, settings: Settings) -> None:
    digests = settings.api_keys_sha256
    origins = set(settings.cors_origins)
    app.config["QA_KEYS_REQUIRED"] = bool(digests)
    app.session_interface = SessionInterface()
    if settings.proxies:
        # Believe the proxies' X-Forwarded-For (the address limited) and -Proto (HTTPS).
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxies, x_proto=settings.proxies
        )

    @app.before_request
    def _who() -> None:
        _identify(digests)

    # Registered after _who and before _authorise: counts every request, refused or not.
    limiter = Limiter(
        _client_key,
        app=app,
        # One budget for all routes together, not one per route.
        application_limits=[settings.rate_limit] if settings.rate_limit else [],
        storage_uri="memory://",
        headers_enabled=True,
    )
    # Limited: the API (not its probes), the sign-in, metrics. Not: pages and assets.
    limiter.request_filter(
        lambda: (
            request.path in PUBLIC_PATHS
            or not (request.path.startswith("/api/") or request.path in ("/login", "/metrics"))
            or request.method == "OPTIONS"
        )
    )

    @app.before_request
    def _authorise() -> Any:
        if request.method == "OPTIONS" and request.path.startswith("/api/"):
            return _preflight()
        path = request.path
        if not digests or path in PUBLIC_PATHS or path.startswith("/static/"):
            return None
        if path in ("/login", "/logout"):
            return None
        if g.qa_key is not None and not g.qa_by_session:
            return None  # a key in the header may use everything
        if g.qa_key is not None and _chat_may(request.method, path):
            return None
        if g.qa_key is not None:
            raise Forbidden(f"the chat's session may not use {path}; send an API key")
        if request.method == "GET" and (path == "/" or path.startswith("/p/")):
            return redirect(url_for("security.login", next=request.full_path.rstrip("?")))
        raise Unauthorized(f"a valid API key is required in the {API_KEY_HEADER} header")

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if response.mimetype == "text/html":
            response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        origin = request.headers.get("Origin")
        if origins and request.path.startswith("/api/"):
            response.vary.add("Origin")
            if origin and origin in origins:
                response.headers["Access-Control-Allow-Origin"] = origin
        if digests and request.path.startswith("/api/"):
            # What a key or session may see is not for shared caches.
            response.vary.add(API_KEY_HEADER)
            response.vary.add("Cookie")
        return response

    def _preflight() -> Response:
        response = Response(status=204)
        origin = request.headers.get("Origin")
        if origin and origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE"
            response.headers["Access-Control-Allow-Headers"] = f"Content-Type, {API_KEY_HEADER}"
            response.headers["Access-Control-Max-Age"] = "600"
        response.vary.add("Origin")
        return response

    from flask import Blueprint

    pages = Blueprint("security", __name__, template_folder="templates")

    @pages.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        target = _local_target(request.values.get("next"))
        if not digests:
            return redirect(target)
        if request.method == "GET":
            return render_template("login.html", next=target, failed=False)
        key = request.form.get("key", "")
        if not key_is_valid(key, digests):
            logger.warning("failed sign-in from %s", request.remote_addr)
            return render_template("login.html", next=target, failed=True), 401
        session.clear()
        session["key"] = key_digest(key)
        session.permanent = True
        return redirect(target, code=303)

    @pages.post("/logout")
    def logout() -> Any:
        session.clear()
        return redirect(url_for("security.login"), code=303)

    app.register_blueprint(pages)


def _local_target(target: str | None) -> str:
    """Where to go after signing in: a path of this service, never another site."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc or "\\" in target else target
