from django.contrib.auth import views as auth_views
from django.urls import path

from app.web import views
from app.web.forms import LoginForm
from app.web.throttle import throttled_posts

app_name = "web"

urlpatterns = [
    path("", views.upload, name="upload"),
    path("signup/", throttled_posts(views.sign_up), name="signup"),
    path(
        "login/",
        throttled_posts(
            auth_views.LoginView.as_view(
                template_name="web/login.html",
                authentication_form=LoginForm,
                redirect_authenticated_user=True,
            )
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("history/", views.history, name="history"),
    path("records/<int:pk>/", views.record, name="record"),
    path("records/<int:pk>/delete/", views.delete_record, name="record-delete"),
    path("keys/", views.api_keys, name="api-keys"),
    path("keys/<int:pk>/revoke/", views.revoke_api_key, name="api-key-revoke"),
    # Throttled like the log-in: the form checks the current password.
    path("password/", throttled_posts(views.change_password), name="password"),
]
