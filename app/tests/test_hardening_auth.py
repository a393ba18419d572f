"""Issue 19, sign-in hardening: throttles a client cannot reset, tokens that end with the password."""

import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from app.tests.clients import client_for
from app.tests.responses import assert_error

PASSWORD = "correct horse battery staple"


def wrong_login(client, **headers):
    return client.post("/api/token_obtain_pair/", {"username": "nobody", "password": "x"}, **headers)


@pytest.mark.django_db
def test_a_forwarded_for_header_does_not_start_a_new_bucket(client):
    codes = [wrong_login(client, HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code for i in range(21)]
    assert codes[:20] == [401] * 20
    assert codes[20] == 429


@pytest.mark.django_db
def test_the_admin_login_is_throttled(client, user):
    for _ in range(20):
        client.post("/admin/login/", {"username": user.username, "password": "wrong"})
    assert client.post("/admin/login/", {"username": user.username, "password": "wrong"}).status_code == 429


@pytest.mark.django_db
def test_logout_blacklists_the_refresh_token(anon, user):
    refresh = str(RefreshToken.for_user(user))
    assert anon.post("/api/token/logout/", {"refresh": refresh}, format="json").status_code == 200
    assert_error(
        anon.post("/api/token_refresh/", {"refresh": refresh}, format="json"), 401, "token_not_valid"
    )


@pytest.mark.django_db
def test_a_password_change_ends_every_token(anon, user):
    user.set_password(PASSWORD)
    user.save()
    api = client_for(user)
    old = str(RefreshToken.for_user(user))
    response = api.post(
        "/api/password/", {"old_password": PASSWORD, "new_password": "another fine passphrase"}
    )
    assert response.status_code == 200, response.content
    assert_error(anon.post("/api/token_refresh/", {"refresh": old}, format="json"), 401, "token_not_valid")
    assert_error(api.get("/api/history/"), 401, "authentication_failed")


@pytest.mark.django_db
def test_api_keys_page_title_and_aria_invalid(client, user):
    client.force_login(user)
    page = client.get("/keys/").content.decode()
    assert "<title>API keys · onlineocr</title>" in page
    invalid = client.post("/keys/", {"name": ""}).content.decode()
    assert 'aria-invalid="true"' in invalid
