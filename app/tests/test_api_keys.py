"""API keys: created and shown once, stored hashed, accepted in three headers, counted, revoked."""

import base64

import pytest
from rest_framework.test import APIClient

from app.models import ApiKey
from app.tests.clients import client_for
from app.tests.imaging import encode, render
from app.tests.responses import assert_error

PNG = encode(render(["key holder"]))


@pytest.fixture
def key(api) -> dict:
    response = api.post("/api/keys/", {"name": "scanner"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def with_header(**headers) -> APIClient:
    client = APIClient()
    client.credentials(**headers)
    return client


def test_created_key_is_shown_once_and_stored_hashed(api, key):
    assert key["name"] == "scanner"
    assert key["active"] is True
    plain = key["key"]
    assert len(plain) >= 40
    assert plain.startswith(key["prefix"])
    stored = ApiKey.objects.get(pk=key["id"])
    assert plain not in (stored.key_hash, stored.prefix)
    assert stored.key_hash == ApiKey.hash(plain)
    listed = api.get("/api/keys/").json()["results"]
    assert [item["id"] for item in listed] == [key["id"]]
    assert "key" not in listed[0]


@pytest.mark.parametrize(
    "headers",
    [
        lambda k: {"HTTP_X_API_KEY": k},
        lambda k: {"HTTP_AUTHORIZATION": f"APPCODE {k}"},
        lambda k: {"HTTP_AUTHORIZATION": f"Basic {k}"},
        lambda k: {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"user:{k}".encode()).decode()},
    ],
    ids=["x-api-key", "appcode", "basic-bare", "basic-standard"],
)
def test_key_authenticates_in_every_header_and_counts_use(user, key, headers):
    client = with_header(**headers(key["key"]))
    response = client.post("/api/ocr/", {"image_base64": base64.b64encode(PNG).decode()}, format="json")
    assert response.status_code == 201, response.content
    assert client.get("/api/history/").json()["count"] == 1
    stored = ApiKey.objects.get(pk=key["id"])
    assert stored.usage_count == 2
    assert stored.last_used_at is not None
    assert stored.owner == user


def test_revoked_key_is_refused_with_401(api, key):
    assert api.delete(f"/api/keys/{key['id']}/").status_code == 204
    response = with_header(HTTP_X_API_KEY=key["key"]).get("/api/history/")
    assert_error(response, 401, "invalid_api_key")
    listed = api.get("/api/keys/").json()["results"][0]
    assert listed["active"] is False
    assert listed["revoked_at"]


@pytest.mark.parametrize("value", ["", "nope", "x" * 200])
def test_unknown_keys_are_refused_with_401(db, value):
    response = with_header(HTTP_AUTHORIZATION=f"APPCODE {value}").get("/api/history/")
    assert response.status_code == 401


def test_keys_cannot_mint_keys(key):
    response = with_header(HTTP_X_API_KEY=key["key"]).post("/api/keys/", {"name": "more"}, format="json")
    assert response.status_code == 403
    assert ApiKey.objects.count() == 1


def test_another_users_key_is_invisible_and_cannot_be_revoked(other_user, key):
    other = client_for(other_user)
    assert other.get("/api/keys/").json()["count"] == 0
    assert other.delete(f"/api/keys/{key['id']}/").status_code == 404
    assert ApiKey.objects.get(pk=key["id"]).active


def test_key_name_is_required(api):
    response = api.post("/api/keys/", {"name": ""}, format="json")
    assert_error(response, 400, "blank")


def test_staff_see_and_revoke_keys_in_the_admin_but_never_the_key(client, key):
    from app.tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get("/admin/app/apikey/")
    assert page.status_code == 200
    assert key["prefix"].encode() in page.content
    assert key["key"].encode() not in page.content
    response = client.post(
        "/admin/app/apikey/", {"action": "revoke", "_selected_action": [key["id"]]}, follow=True
    )
    assert response.status_code == 200
    assert not ApiKey.objects.get(pk=key["id"]).active
