from django.urls import path
from rest_framework.routers import SimpleRouter

from app.api import views

app_name = "api"

router = SimpleRouter()
router.register("history", views.HistoryViewSet, basename="history")

urlpatterns = [
    path("register/", views.RegisterView.as_view(), name="register"),
    path("token_obtain_pair/", views.TokenObtainView.as_view(), name="token_obtain_pair"),
    path("token_refresh/", views.TokenRefresh.as_view(), name="token_refresh"),
    path("ocr/", views.OcrView.as_view(), name="ocr"),
    path("engines/", views.EnginesView.as_view(), name="engines"),
    path("health/", views.HealthView.as_view(), name="health"),
    *router.urls,
]
