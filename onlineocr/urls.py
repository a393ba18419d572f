from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/", include("app.api.urls")),
    # The older services' endpoints (ping, ocr/…, det/…, slide/…, ocr), at the root.
    path("", include("app.compat.urls")),
    path("", include("app.web.urls")),
]

handler404 = "app.web.views.not_found"  # HTML for browser pages, the API's JSON error otherwise
handler500 = "app.api.errors.json_server_error"
