from django.urls import path
from rest_framework.routers import SimpleRouter

from app.api import views

app_name = "api"

router = SimpleRouter()
router.register("history", views.HistoryViewSet, basename="history")
router.register("keys", views.ApiKeyViewSet, basename="keys")

urlpatterns = [
    path("register/", views.RegisterView.as_view(), name="register"),
    path("token_obtain_pair/", views.TokenObtainView.as_view(), name="token_obtain_pair"),
    path("token_refresh/", views.TokenRefresh.as_view(), name="token_refresh"),
    path("token/logout/", views.TokenLogoutView.as_view(), name="token_logout"),
    path("password/", views.PasswordChangeView.as_view(), name="password"),
    path("ocr/", views.OcrView.as_view(), name="ocr"),
    path("ocr/batch/", views.BatchCreateView.as_view(), name="batch-create"),
    path("batches/<int:pk>/", views.BatchDetailView.as_view(), name="batch-detail"),
    path("slide/", views.SlideView.as_view(), name="slide"),
    path("engines/", views.EnginesView.as_view(), name="engines"),
    path("health/", views.HealthView.as_view(), name="health"),
    *router.urls,
]
