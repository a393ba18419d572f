from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from app import docs

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", docs.swagger_ui, name="docs"),  # Swagger UI and ReDoc under the CSP: app/docs.py
    path("redoc/", docs.redoc, name="redoc"),
    path("api/", include("app.api.urls")),
    # The older services' endpoints (ping, ocr/…, det/…, slide/…, ocr), at the root.
    path("", include("app.compat.urls")),
    path("", include("app.web.urls")),
]

# JSON on the API's and the older services' paths, HTML pages for browsers elsewhere.
handler400 = "app.handlers.bad_request"
handler403 = "app.handlers.permission_denied"
handler404 = "app.handlers.page_not_found"
handler500 = "app.handlers.server_error"
