"""Every answer under /api/ is JSON, whatever the client's Accept says.

DRF's default would answer a browser (Accept: text/html) with its browsable HTML page, and
a client that accepts nothing we render with a 406. The API renders JSON only
(DEFAULT_RENDERER_CLASSES); a view with renderers of its own (the schema: YAML or JSON)
still chooses among them by Accept, and falls back to its first one instead of a 406.
"""

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation


class FirstRendererFallback(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type
