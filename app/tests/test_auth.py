"""Registration, JWT obtain/refresh with rotation and blacklisting, throttling."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from app.tests.responses import assert_error

PASSWORD = "correct horse battery staple"


@pytest.fixture
def registered(anon, db):
    response = anon.post(
        "/api/register/", {"username": "alice", "email": "alice@example.com", "password": PASSWORD}
    )
    assert response.status_code == 201, response.content
    return response.json()


def obtain(client: APIClient, username: str = "alice", password: str = PASSWORD):
    return client.post("/api/token_obtain_pair/", {"username": username, "password": password})


def test_register_returns_the_user_without_the_password(registered):
    assert set(registered) == {"id", "username", "email"}
    assert registered["username"] == "alice"
    user = get_user_model().objects.get(pk=registered["id"])
    assert user.check_password(PASSWORD)
    assert user.password != PASSWORD


@pytest.mark.parametrize(
    ("payload", "field", "code"),
    [
        ({"username": "bob", "password": "123"}, "password", "weak_password"),
        ({"username": "bob", "password": "password"}, "password", "weak_password"),
        ({"username": "margaret", "password": "margaret1"}, "password", "weak_password"),
        ({"username": "bad name!", "password": PASSWORD}, "username", "invalid"),
        ({"username": "x" * 151, "password": PASSWORD}, "username", "max_length"),
        ({"username": "bob", "email": "not-an-email", "password": PASSWORD}, "email", "invalid"),
        ({"password": PASSWORD}, "username", "required"),
    ],
)
def test_register_rejects_bad_input_field_by_field(anon, db, payload, field, code):
    response = anon.post("/api/register/", payload, format="json")
    error = assert_error(response, 400, code)
    assert field in error["fields"]
    assert error["message"].startswith(field)
    assert not get_user_model().objects.exists()


def test_duplicate_username_is_refused_case_insensitively(anon, registered):
    response = anon.post("/api/register/", {"username": "ALICE", "password": PASSWORD})
    assert_error(response, 400, "username_taken")
    assert get_user_model().objects.count() == 1


def test_token_pair_authenticates_api_calls(anon, registered):
    tokens = obtain(anon).json()
    assert set(tokens) == {"access", "refresh"}
    assert anon.get("/api/history/").status_code == 401
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert anon.get("/api/history/").status_code == 200


def test_wrong_password_gets_401_json(anon, registered):
    response = obtain(anon, password="wrong")
    assert_error(response, 401, "no_active_account")


def test_refresh_rotates_and_blacklists_the_old_refresh_token(anon, registered):
    first = obtain(anon).json()
    rotated = anon.post("/api/token_refresh/", {"refresh": first["refresh"]})
    assert rotated.status_code == 200
    assert set(rotated.json()) == {"access", "refresh"}
    assert rotated.json()["refresh"] != first["refresh"]
    reused = anon.post("/api/token_refresh/", {"refresh": first["refresh"]})
    assert_error(reused, 401, "token_not_valid")


def test_forged_token_is_refused(anon, registered):
    access = obtain(anon).json()["access"]
    header, payload, signature = access.split(".")
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {header}.{payload}.{signature[::-1]}")
    response = anon.get("/api/history/")
    assert_error(response, 401, "token_not_valid")


def test_auth_endpoints_share_one_throttle(anon, registered, settings):
    """Registering counted once already: two failed logins fill a 3/minute budget."""
    settings.OCR_AUTH_THROTTLE = "3/minute"
    codes = [obtain(anon, password="wrong").status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    throttled = obtain(anon)
    assert_error(throttled, 429, "throttled")
    assert int(throttled["Retry-After"]) > 0
