"""A strict Content-Security-Policy on every answer (Django 5.2 has none built in).

The pages load nothing from another host and run no inline script or style: their scripts
and style sheets are files under static/. An injected `<script>`, `<style>`, `style=` or
`on…=` handler is then refused by the browser, whatever slipped through the escaping. JSON
answers carry the policy too: one opened directly in a tab is a document like any other.

A view that needs more (the API docs' third-party UIs, see onlineocr/urls.py) says so with
`csp_allow`, which adds to named directives for that view's answers only; `NONCE` there stands
for a fresh per-request nonce, available to the template as `request.csp_nonce`.
"""

import secrets
from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

POLICY: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "script-src": ("'self'",),
    "style-src": ("'self'",),
    "img-src": ("'self'", "data:", "blob:"),
    "object-src": ("'none'",),
    "base-uri": ("'none'",),
    "frame-ancestors": ("'none'",),
    "form-action": ("'self'",),
}
HEADER = "Content-Security-Policy"
NONCE = "nonce"  # in csp_allow: this request's nonce


def header_value(extra: dict[str, tuple[str, ...]] | None = None, nonce: str = "") -> str:
    directives = {name: list(sources) for name, sources in POLICY.items()}
    for name, sources in (extra or {}).items():
        # A directive the policy leaves out falls back to default-src: it starts from there.
        directives.setdefault(name, list(POLICY["default-src"]))
        directives[name] += [f"'nonce-{nonce}'" if source == NONCE else source for source in sources]
    return "; ".join(" ".join([name, *sources]) for name, sources in directives.items())


def csp_allow(**directives: tuple[str, ...]) -> Callable:
    """Widen named directives (`style_src=(NONCE,)` for style-src) for one view's answers."""
    extra = {name.replace("_", "-"): tuple(sources) for name, sources in directives.items()}

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            response = view(request, *args, **kwargs)
            response.csp_extra = extra
            return response

        return wrapper

    return decorator


class ContentSecurityPolicyMiddleware:
    """Sends POLICY (plus a view's csp_allow) unless the answer already has its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.csp_nonce = SimpleLazyObject(lambda: secrets.token_urlsafe(18))
        response = self.get_response(request)
        if HEADER not in response:
            extra = getattr(response, "csp_extra", None)
            nonce = str(request.csp_nonce) if extra else ""
            response[HEADER] = header_value(extra, nonce)
        return response
