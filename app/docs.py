"""The API docs pages (/docs/ Swagger UI, /redoc/ ReDoc, both from drf-spectacular-sidecar)
under the strict Content-Security-Policy of app/csp.py.

Swagger UI needs nothing extra: SpectacularSwaggerSplitView serves its init script as a file
(`/docs/?script`) and templates/docs/swagger_ui.html moves the page's inline <style> to
static/css/docs.css.

ReDoc (templates/docs/redoc.html, started by static/js/redoc.js) needs three allowances, on
/redoc/ only, each the narrowest that works:
- style-src: a per-request nonce, which ReDoc (its `nonce` option) puts on the <style> elements
  styled-components injects; and two hashes for the one style sheet its bundle injects when it
  loads, before any option is read: perfect-scrollbar's CSS, first inserted empty. The hashes
  belong to the sidecar's ReDoc (2.5.4, in drf-spectacular-sidecar 2026.10.1): a new
  bundle with other CSS makes test_csp.py's browser test report the refused style sheet.
- worker-src blob: its search index runs in a Worker made from a blob: URL.
'unsafe-inline' is not needed anywhere.

ReDoc's side menu also shows a logo from https://cdn.redoc.ly; the policy refuses it (the page
loads nothing from elsewhere) and ReDoc hides the image when it fails to load.
"""

from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

from app.csp import NONCE, csp_allow

REDOC_INJECTED_STYLES = (
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",  # perfect-scrollbar's CSS
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # the same <style>, still empty
)

swagger_ui = SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="docs/swagger_ui.html")
redoc = csp_allow(style_src=(NONCE, *REDOC_INJECTED_STYLES), worker_src=("blob:",))(
    SpectacularRedocView.as_view(url_name="schema", template_name="docs/redoc.html")
)
