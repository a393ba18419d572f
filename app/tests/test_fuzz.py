"""Fuzzing: schemathesis generates requests for every operation of /api/schema/ and checks that
none answers a 5xx and that every answer is one the schema documents (status code, content
type, body).

Requests go in-process through the WSGI app (werkzeug's test client), on the test's own thread
and so on its own database connection. Django's WSGI handler closes "old" connections when a
request starts and ends, and a connection inside an atomic block counts as old: under
pytest-django's `db` (one transaction, rolled back) the first request would close the test's
connection. So these tests use `transactional_db`: real commits, tables flushed after each
operation's test.

Two passes over every operation: schemathesis' coverage phase (edge values, missing and
wrong-typed fields, unexpected methods; it only runs without @given), then random requests in
which each example also draws how it signs in (a JWT, or an API key made for it) and which id
a path gets (one of the caller's own rows made for it, another user's, or the generated one),
so that reads, deletes and the isolation 404 all happen. POST /api/ocr/ sometimes sends a real
small image, so that success answers are checked against the schema too; the limits are
lowered so that no generated input can make an engine work long. Requests are derandomized:
CI sends the same ones on every run. What the fuzzer found is kept as plain cases at the end.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import services
from app.api.serializers import FORMATS
from app.models import Batch, RateCounter
from app.tests.factories import OcrRecordFactory
from app.tests.imaging import encode, render
from onlineocr.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
# The credentials are the test's own (see headers_for), not generated junk beside them.
schema.config.generation.update(with_security_parameters=False)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 15  # random requests per operation
PNG = encode(render(["FUZZ 42"], size=24, pad=8))

# Path prefix -> how to make a row there for an owner; its id replaces the generated one.
ROWS = {
    "/api/history/": lambda owner: OcrRecordFactory(owner=owner).pk,
    "/api/keys/": lambda owner: services.create_api_key(owner=owner, name="fuzz")[0].pk,
    "/api/batches/": lambda owner: (
        OcrRecordFactory(owner=owner, batch=Batch.objects.create(owner=owner)).batch.pk
    ),
}
UPLOADS = st.none() | st.fixed_dictionaries(
    {
        "engine": st.sampled_from(["", "auto", "tesseract", "rapidocr", "ddddocr", "zxing"]),
        "format": st.sampled_from(FORMATS),
        "force": st.sampled_from(["true", "false"]),
    }
)


@pytest.fixture(autouse=True)
def _quick(settings):
    """A generated URL fails fast, no generated image or PDF is big enough to read long, and
    making users (and fuzzed sign-ups) does not spend a second hashing each password."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.OCR_URL_TIMEOUT = 1
    settings.OCR_MAX_PIXELS = 250_000
    settings.OCR_PDF_MAX_PAGES = 2


def headers_for(user, auth: str) -> dict[str, str]:
    """A fresh credential per example: a fuzzed DELETE /api/keys/{id}/ may revoke a key."""
    if auth == "jwt":
        # The dialect endpoints take keys only, so they get one in every example.
        return {
            "Authorization": f"Bearer {RefreshToken.for_user(user).access_token}",
            "X-API-Key": services.create_api_key(owner=user, name="fuzz")[1],
        }
    return {"X-API-Key": services.create_api_key(owner=user, name="fuzz")[1]}


def use_row(case, owner) -> None:
    make = next((make for prefix, make in ROWS.items() if case.path.startswith(prefix)), None)
    if make is not None and "id" in (case.path_parameters or {}):
        case.path_parameters["id"] = make(owner)


def use_real_image(case, upload: dict) -> None:
    if case.operation.label == "POST /api/ocr/" and case.media_type == "multipart/form-data":
        case.body = {"image": PNG, **upload}


SETTINGS = {
    "deadline": None,
    "derandomize": True,  # the same requests on every run, in CI too
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


def call_and_validate(case, headers: dict[str, str]):
    RateCounter.objects.all().delete()  # the sign-in throttle would otherwise answer most examples with 429
    return case.call_and_validate(headers=headers, checks=CHECKS)


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(max_examples=3, **SETTINGS)
def test_every_operation_at_its_edges(case, user):
    """schemathesis' coverage phase: each field missing, empty, at and past its bounds, of the
    wrong type, plus unexpected methods; then a few random requests."""
    call_and_validate(case, headers_for(user, "jwt"))


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@schema.given(
    auth=st.sampled_from(["jwt", "api_key"]),
    row=st.sampled_from(["own", "other", "generated"]),
    upload=UPLOADS,
)
@settings(max_examples=EXAMPLES, **SETTINGS)
def test_every_operation_on_real_rows(case, auth, row, upload, user, other_user):
    """Random requests, with real ids and sometimes a real image (no coverage phase: schemathesis
    runs it only without @given)."""
    if row != "generated":
        use_row(case, user if row == "own" else other_user)
    if upload is not None:
        use_real_image(case, upload)
    call_and_validate(case, headers_for(user, auth))


FOUND = [
    # PostgreSQL refused the offset (Python reads up to ±23:59): a 500.
    pytest.param(
        "GET", "/api/history/", {"query": {"created_after": "0117-01-25T14:35:10+22:57"}}, 200, id="offset"
    ),
    # Year 1 at +05:00 is still year 0 in UTC, which does not exist: a 500 on either database.
    pytest.param(
        "GET", "/api/history/", {"query": {"created_before": "0001-01-01T00:00:00+05:00"}}, 400, id="year-0"
    ),
    # The error message echoes the value, and the X-Ca-Error-Message header had its newline: a 500.
    pytest.param("GET", "/api/history/", {"query": {"engine": "ºso\x93\r\nX"}}, 400, id="newline"),
    # The answer's e-mail was documented as an address; without one it is "".
    pytest.param(
        "POST",
        "/api/register/",
        {
            "body": {"username": "fuzzed", "password": "correct horse battery staple"},
            "media_type": "application/json",
        },
        201,
        id="no-email",
    ),
    # format=hocr answers text/html, format=text text/plain: both were undocumented.
    *[
        pytest.param(
            "POST",
            "/api/ocr/",
            {
                "query": {"format": output},
                "body": {"image": PNG, "engine": "tesseract"},
                "media_type": "multipart/form-data",
            },
            201,
            id=output,
        )
        for output in ("hocr", "text")
    ],
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("method", "path", "fields", "expected"), FOUND)
def test_what_the_fuzzer_found(method, path, fields, expected, user):
    response = call_and_validate(schema[path][method].Case(**fields), headers_for(user, "jwt"))
    assert response.status_code == expected


@pytest.mark.django_db(transaction=True)
def test_a_bad_token_is_refused_in_words():
    """simplejwt's error detail is a dict; the message used to be its Python repr."""
    case = schema["/api/history/"]["GET"].Case()
    response = call_and_validate(case, {"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "token_not_valid",
        "message": "Given token not valid for any token type",
    }
