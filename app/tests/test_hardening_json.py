"""Issue 19, item 8: every answer on the API's and the older services' paths is the JSON error
envelope, Django's own errors included (handler400/403/404/500, CSRF_FAILURE_VIEW, a refused
Host, too many form fields or files, a cache that is down); the browser pages keep HTML.

The raising views below are mounted in front of the real URL conf (ROOT_URLCONF is this module,
which takes onlineocr.urls' handlers as they are), at an API path, an older service's path and
a page path, to reach each handler the way Django does."""

import pytest
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpResponse
from django.test import Client
from django.urls import path

from app.tests.imaging import encode, render
from app.tests.processes import free_port
from app.tests.responses import assert_error
from onlineocr import urls as real_urls

PNG = encode(render(["json"]))
HTML = {"HTTP_ACCEPT": "text/html,application/xhtml+xml"}
RAISED = {
    "400": SuspiciousOperation("a suspicious request"),
    "403": PermissionDenied(),
    "404": Http404(),
    "500": RuntimeError("a bug"),
}


def _raise(request, kind: str):
    raise RAISED[kind]


def _plain_post(request):
    """A plain Django view (not DRF's, hence not CSRF-exempt), as a future API view could be."""
    return HttpResponse("{}", content_type="application/json")


# Django reads the handlers from ROOT_URLCONF: the real ones (Django's defaults where it has none).
DEFAULTS = "django.views.defaults"
handler400 = getattr(real_urls, "handler400", f"{DEFAULTS}.bad_request")
handler403 = getattr(real_urls, "handler403", f"{DEFAULTS}.permission_denied")
handler404 = getattr(real_urls, "handler404", f"{DEFAULTS}.page_not_found")
handler500 = getattr(real_urls, "handler500", f"{DEFAULTS}.server_error")
urlpatterns = [
    path("api/test-raise/<str:kind>/", _raise),
    path("det/test-raise/<str:kind>/", _raise),
    path("test-raise/<str:kind>/", _raise),
    path("api/test-plain/", _plain_post),
    path("test-plain/", _plain_post),
    *real_urls.urlpatterns,
]


@pytest.fixture
def keyed(user):
    """A client with an API key, which the API and the older services' paths all take."""
    from rest_framework.test import APIClient

    from app import services

    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"APPCODE {services.create_api_key(owner=user, name='t')[1]}")
    return client


@pytest.fixture
def raising(settings):
    settings.ROOT_URLCONF = __name__
    return Client(raise_request_exception=False)


# --- handler400/403/404/500 -------------------------------------------------------------------

CODES = {"400": "bad_request", "403": "permission_denied", "404": "not_found", "500": "server_error"}


@pytest.mark.parametrize("prefix", ["/api/", "/det/"])
@pytest.mark.parametrize("kind", CODES)
def test_django_error_handlers_answer_json_on_api_paths_even_to_a_browser(raising, db, prefix, kind):
    response = raising.get(f"{prefix}test-raise/{kind}/", **HTML)
    assert_error(response, int(kind), CODES[kind])
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("kind", CODES)
def test_django_error_handlers_answer_html_on_pages_for_a_browser(raising, db, kind):
    response = raising.get(f"/test-raise/{kind}/", **HTML)
    assert response.status_code == int(kind)
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    "url",
    [
        "/api/nothing-here/",
        "/api/",
        "/ping/extra",
        "/ocr/nothing",
        "/ocr/file/xml",
        "/det/nothing",
        "/slide/match/nothing",
        "/media/nothing.png",
    ],
)
def test_unknown_urls_on_api_and_service_paths_are_json_404s_even_to_a_browser(client, db, url):
    response = client.get(url, **HTML)
    assert_error(response, 404, "not_found")
    assert response["Content-Type"] == "application/json"


def test_an_unknown_page_is_still_an_html_404_for_a_browser(client, db):
    response = client.get("/no-such-page/", **HTML)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# --- too many fields, too many files ------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/ocr/", "/ocr/file/json", "/ocr"])
def test_more_multipart_fields_than_django_takes_is_a_json_400_too_many_fields(keyed, settings, url):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 20
    fields = {f"f{i}": "1" for i in range(21)}
    response = keyed.post(url, {**fields, "image": _png()}, format="multipart", **HTML)
    error = assert_error(response, 400, "too_many_fields")
    assert "20" in error["message"]


def test_more_query_parameters_than_django_takes_is_a_json_400_too_many_fields(api, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 20
    query = "&".join(f"q{i}=1" for i in range(21))
    assert_error(api.get(f"/api/history/?{query}"), 400, "too_many_fields")


def test_101_loose_batch_files_is_a_json_413_too_many_files(api, media_files):
    files = [_png(f"p{i}.png") for i in range(101)]
    response = api.post("/api/ocr/batch/", {"images": files}, format="multipart")
    error = assert_error(response, 413, "too_many_files")
    assert "100" in error["message"]
    assert media_files() == set()


def test_a_form_body_over_django_s_memory_limit_is_a_json_413(settings, user):
    """Read by the CSRF check of a plain Django view, outside DRF's handler."""
    settings.ROOT_URLCONF = __name__
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(user)
    client.cookies["csrftoken"] = "a" * 32  # a well-formed cookie: the check goes on to read the body
    body = "a=" + "b" * 200
    response = client.post("/api/test-plain/", body, content_type="application/x-www-form-urlencoded", **HTML)
    assert_error(response, 413, "too_large")


# --- Host, CSRF, cache ---------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/engines/", "/ping", "/ocr/file/json"])
def test_a_host_outside_allowed_hosts_is_a_json_400_on_api_paths(client, db, url):
    response = client.get(url, HTTP_HOST="evil.example", **HTML)
    assert_error(response, 400, "disallowed_host")
    assert "evil.example" not in response.content.decode()


def test_a_host_outside_allowed_hosts_is_html_on_a_page(client, db):
    response = client.get("/login/", HTTP_HOST="evil.example", **HTML)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


def test_a_csrf_failure_on_an_api_path_is_json_like_drf_s_own(settings, user):
    settings.ROOT_URLCONF = __name__
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    plain = client.post("/api/test-plain/", {"a": "1"})
    drf = client.post("/api/history/", {"a": "1"})  # DRF's session check, for comparison
    error = assert_error(plain, 403, "permission_denied")
    assert error["message"].startswith("CSRF Failed: ")
    assert assert_error(drf, 403, "permission_denied")["message"].startswith("CSRF Failed: ")


def test_a_csrf_failure_on_a_page_is_still_django_s_html(settings, user):
    settings.ROOT_URLCONF = __name__
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/test-plain/", {"a": "1"}, **HTML)
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")


@pytest.fixture
def dead_cache(settings):
    """settings.CACHES is a Redis that nothing listens for."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }


@pytest.mark.parametrize(
    ("url", "data", "status"),
    [
        ("/api/ocr/", {"image": "png"}, 201),
        ("/ocr/file/json", {"image": "png"}, 200),
        ("/api/token_obtain_pair/", {"username": "nobody", "password": "x"}, 401),
    ],
)
def test_the_throttled_endpoints_do_not_need_the_cache(keyed, dead_cache, url, data, status):
    """The throttles count in the database (app/throttles.py), not in the cache."""
    body = {key: _png() if value == "png" else value for key, value in data.items()}
    assert keyed.post(url, body, format="multipart", **HTML).status_code == status


def test_an_endpoint_without_throttles_works_while_the_cache_is_down(anon, db, dead_cache):
    assert anon.get("/api/engines/").status_code == 200


def test_the_log_in_page_does_not_need_the_cache(client, db, dead_cache):
    response = client.post("/login/", {"username": "nobody", "password": "x"}, **HTML)
    assert response.status_code == 200  # the form again, with its error
    assert response["Content-Type"].startswith("text/html")


def _png(name: str = "a.png"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, PNG, content_type="image/png")
