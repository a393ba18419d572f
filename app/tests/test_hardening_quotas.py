"""Issue 19, the per-user limits as a client meets them (app/throttles.py, ChainedRefreshToken):

- the OCR rate (OCR_USER_THROTTLE) counts per API key, else per user, else per address: the
  request past it is a 429 with Retry-After, and neither a fresh access token, another header
  form of the same key, another OCR endpoint, a forged X-Forwarded-For nor a key minting a
  key opens a new budget. A second key the owner made has its own budget, by design (a
  leaked key cannot use up the owner's others);
- the daily image and page quotas (a PDF counts its pages) are per user, whatever key, and
  GET /api/keys/ shows the day's `usage` exactly;
- a refresh chain ends JWT_REFRESH_MAX_DAYS after its login;
- the sign-in throttle is one count across two uWSGI workers (rows of the database).
"""

import base64
import http.client
import io
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from app.authentication import CHAIN_CLAIM, ChainedRefreshToken
from app.models import OcrRecord
from app.tests.clients import client_for
from app.tests.factories import OcrRecordFactory, UserFactory
from app.tests.imaging import encode, english_lines, render
from app.tests.responses import assert_error
from app.tests.stack import PASSWORD, VIA_TLS, Stack, missing_tools, running_stack

RATE = 3


@pytest.fixture
def rate(settings):
    settings.OCR_USER_THROTTLE = f"{RATE}/minute"


@pytest.fixture
def keys(api) -> list[dict]:
    """Two API keys of `user`, made as the owner makes them (signed in with a token)."""
    made = [api.post("/api/keys/", {"name": name}, format="json") for name in ("scanner", "laptop")]
    assert [response.status_code for response in made] == [201, 201]
    return [response.json() for response in made]


def with_key(key: str, scheme: str = "x-api-key") -> APIClient:
    client = APIClient()
    header = {
        "x-api-key": {"HTTP_X_API_KEY": key},
        "appcode": {"HTTP_AUTHORIZATION": f"APPCODE {key}"},
        "basic": {"HTTP_AUTHORIZATION": f"Basic {base64.b64encode(f'any:{key}'.encode()).decode()}"},
    }[scheme]
    client.credentials(**header)
    return client


def counted(client: APIClient, path: str = "/api/ocr/", **extra):
    """An OCR request the rate counts that reads nothing: no image, so a 400 once past the throttles."""
    return client.post(path, {}, format="multipart", **extra)


def use_up(client: APIClient, **extra) -> None:
    assert [counted(client, **extra).status_code for _ in range(RATE)] == [400] * RATE


def ocr(client: APIClient, data: bytes, name: str = "scan.png"):
    kind = "application/pdf" if name.endswith(".pdf") else "image/png"
    upload = SimpleUploadedFile(name, data, content_type=kind)
    return client.post("/api/ocr/", {"image": upload, "engine": "tesseract"}, format="multipart")


def png(seed: int) -> bytes:
    return encode(render(english_lines(1, seed=seed), size=28))


def pdf(pages: int, seed: int) -> bytes:
    images = [render(english_lines(1, seed=seed + i), size=28) for i in range(pages)]
    buffer = io.BytesIO()
    images[0].save(buffer, "PDF", resolution=100, save_all=True, append_images=images[1:])
    return buffer.getvalue()


def next_midnight_utc() -> datetime:
    today = datetime.now(UTC).date()
    return datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)


def usage(api: APIClient) -> dict:
    response = api.get("/api/keys/")
    assert response.status_code == 200, response.content
    shown = response.json()["usage"]
    shown["resets_at"] = datetime.fromisoformat(shown["resets_at"])
    return shown


# --- the OCR rate ------------------------------------------------------------------


def test_the_request_past_the_rate_is_a_429_with_retry_after_and_reads_nothing(api, rate, media_files):
    use_up(api)
    throttled = counted(api)
    assert_error(throttled, 429, "throttled")
    assert 1 <= int(throttled["Retry-After"]) <= 60
    # A real image past the rate is refused before it is read or stored.
    assert_error(ocr(api, png(1)), 429, "throttled")
    assert not OcrRecord.objects.exists()
    assert not media_files()


@pytest.mark.parametrize(
    "sidestep",
    [
        pytest.param(lambda user, api: (client_for(user), {}), id="a-fresh-access-token"),
        pytest.param(lambda user, api: (api, {"HTTP_X_FORWARDED_FOR": "198.51.100.7"}), id="x-forwarded-for"),
        pytest.param(lambda user, api: (api, {"REMOTE_ADDR": "198.51.100.8"}), id="another-address"),
        pytest.param(lambda user, api: (api, {"path": "/api/slide/"}), id="another-ocr-endpoint"),
        pytest.param(lambda user, api: (api, {"path": "/api/ocr/batch/"}), id="the-batch-endpoint"),
    ],
)
def test_a_signed_in_user_cannot_sidestep_the_rate(user, api, rate, sidestep):
    use_up(api)
    client, extra = sidestep(user, api)
    assert_error(counted(client, **extra), 429, "throttled")


@pytest.mark.parametrize(
    ("scheme", "extra"),
    [
        ("x-api-key", {"HTTP_X_FORWARDED_FOR": "198.51.100.9"}),
        ("appcode", {}),
        ("basic", {}),
    ],
)
def test_a_key_cannot_sidestep_its_rate_by_another_header_form_or_address(keys, rate, scheme, extra):
    use_up(with_key(keys[0]["key"]))
    assert_error(counted(with_key(keys[0]["key"], scheme), **extra), 429, "throttled")


def test_each_key_has_its_own_rate_and_a_key_cannot_mint_a_fresh_one(api, keys, rate):
    """The rate is per key by design (a leaked key cannot use up its owner's other keys, nor
    the owner's sign-in): what stops a key holder from multiplying the rate is that a key
    cannot make keys."""
    leaked, other = (with_key(key["key"]) for key in keys)
    use_up(leaked)
    assert_error(counted(leaked), 429, "throttled")
    assert counted(other).status_code == 400  # its own budget
    assert counted(api).status_code == 400  # the owner, signed in, too
    assert_error(leaked.post("/api/keys/", {"name": "more"}, format="json"), 403, "permission_denied")
    assert len(api.get("/api/keys/").json()["results"]) == 2


@pytest.mark.parametrize(
    ("proxies", "forged", "real"),
    [
        # No proxy in front: the socket's address counts, X-Forwarded-For is anyone's to write.
        (0, lambda i: {"HTTP_X_FORWARDED_FOR": f"198.51.100.{i}"}, {"REMOTE_ADDR": "192.0.2.1"}),
        # Behind nginx (NUM_PROXIES=1): only the address nginx appended counts, not what came before it.
        (
            1,
            lambda i: {"HTTP_X_FORWARDED_FOR": f"198.51.100.{i}, 192.0.2.7"},
            {"HTTP_X_FORWARDED_FOR": "192.0.2.1"},
        ),
    ],
)
def test_an_anonymous_caller_cannot_sidestep_the_rate_by_forging_x_forwarded_for(
    settings, anon, db, rate, proxies, forged, real
):
    settings.OCR_ALLOW_ANONYMOUS = True
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": proxies}
    statuses = [counted(anon, "/ocr/file/json", **forged(i)).status_code for i in range(RATE + 1)]
    assert statuses == [400] * RATE + [429]
    throttled = counted(anon, "/ocr/file/json", **forged(99))
    assert throttled.status_code == 429
    assert 1 <= int(throttled["Retry-After"]) <= 60
    assert throttled.json()["result"] == ""
    assert throttled.json()["msg"]
    # Another real address has a budget of its own: the count is per address, not global.
    assert counted(anon, "/ocr/file/json", **real).status_code == 400


# --- the daily quotas ---------------------------------------------------------------


def test_the_daily_image_quota_is_per_user_and_shown_in_usage(settings, user, api, keys):
    settings.OCR_DAILY_IMAGE_QUOTA = 2
    # Yesterday's records and another user's do not count.
    yesterday = OcrRecordFactory(owner=user)
    OcrRecord.objects.filter(pk=yesterday.pk).update(
        created_at=next_midnight_utc() - timedelta(days=1, seconds=1)
    )
    OcrRecordFactory(owner=UserFactory())
    assert ocr(api, png(1)).status_code == 201
    assert ocr(with_key(keys[0]["key"]), png(2)).status_code == 201
    assert usage(api) == {
        "images_today": 2,
        "pages_today": 2,
        "image_quota": 2,
        "page_quota": 0,
        "resets_at": next_midnight_utc(),
    }
    for client in (api, with_key(keys[0]["key"]), with_key(keys[1]["key"])):
        refused = ocr(client, png(3))
        error = assert_error(refused, 429, "quota_exceeded")
        assert "daily quota of 2 images" in error["message"]
        until_midnight = (next_midnight_utc() - datetime.now(UTC)).total_seconds()
        assert abs(int(refused["Retry-After"]) - until_midnight) <= 5
    assert OcrRecord.objects.filter(owner=user).count() == 3  # the refused ones stored nothing
    # Deleting one of today's records gives its share back.
    today = OcrRecord.objects.filter(owner=user).exclude(pk=yesterday.pk).first()
    assert api.delete(f"/api/history/{today.pk}/").status_code == 204
    assert usage(api)["images_today"] == 1
    assert ocr(api, png(4)).status_code == 201


def test_the_daily_page_quota_counts_a_pdfs_pages(settings, api):
    settings.OCR_DAILY_PAGE_QUOTA = 3
    first = ocr(api, pdf(2, seed=10), "two.pdf")
    assert first.status_code == 201, first.content
    assert first.json()["pages_total"] == 2
    assert (usage(api)["images_today"], usage(api)["pages_today"]) == (1, 2)
    # The request that crosses the quota still finishes: its page count is known only once read.
    assert ocr(api, pdf(2, seed=20), "two-more.pdf").status_code == 201
    error = assert_error(ocr(api, png(5)), 429, "quota_exceeded")
    assert "daily quota of 3 pages" in error["message"]
    assert usage(api) == {
        "images_today": 2,
        "pages_today": 4,
        "image_quota": 0,
        "page_quota": 3,
        "resets_at": next_midnight_utc(),
    }


# --- the refresh chain --------------------------------------------------------------


def refresh_token(user, *, signed_in: datetime) -> str:
    """A refresh token of a chain whose login was at `signed_in` (as rotation carries it)."""
    token = ChainedRefreshToken.for_user(user)
    token[CHAIN_CLAIM] = int(signed_in.timestamp())
    return str(token)


def test_a_login_starts_a_chain_that_every_refresh_carries(anon, user):
    login = anon.post("/api/token_obtain_pair/", {"username": user.username, "password": PASSWORD})
    assert login.status_code == 200, login.content
    first = ChainedRefreshToken(login.json()["refresh"])
    assert first[CHAIN_CLAIM] == first["iat"]
    refreshed = anon.post("/api/token_refresh/", {"refresh": str(first)})
    assert refreshed.status_code == 200, refreshed.content
    assert ChainedRefreshToken(refreshed.json()["refresh"])[CHAIN_CLAIM] == first[CHAIN_CLAIM]


@pytest.mark.parametrize("max_days", [30, 2])
def test_a_refresh_past_the_chains_end_is_refused(settings, anon, user, max_days):
    settings.JWT_REFRESH_MAX_DAYS = max_days
    ended = datetime.now(UTC) - timedelta(days=max_days, minutes=1)
    response = anon.post("/api/token_refresh/", {"refresh": refresh_token(user, signed_in=ended)})
    error = assert_error(response, 401, "token_not_valid")
    assert f"more than {max_days} days ago" in error["message"]


@pytest.mark.parametrize("max_days", [30, 2])
def test_a_refresh_near_the_chains_end_expires_with_it(settings, anon, user, max_days):
    settings.JWT_REFRESH_MAX_DAYS = max_days
    signed_in = datetime.now(UTC) - timedelta(days=max_days) + timedelta(hours=1)
    response = anon.post("/api/token_refresh/", {"refresh": refresh_token(user, signed_in=signed_in)})
    assert response.status_code == 200, response.content
    rotated = ChainedRefreshToken(response.json()["refresh"])
    assert rotated[CHAIN_CLAIM] == int(signed_in.timestamp())
    chain_end = int((signed_in + timedelta(days=max_days)).timestamp())
    assert rotated["exp"] == chain_end  # not JWT_REFRESH_DAYS (7) from now
    assert str(AccessToken(response.json()["access"])["user_id"]) == str(user.pk)


# --- the sign-in throttle across processes ------------------------------------------

SIGN_IN = b'{"username": "nobody", "password": "wrong"}'
# uWSGI's line for each request: the worker's pid, the client's address (nginx's $remote_addr).
LOGGED = re.compile(
    r"\[pid: (\d+)\|app: \d+\|req: [^]]+\] (\S+) .*?POST /api/token_obtain_pair/ => .*?\(HTTP/1\.1 (\d+)\)"
)


def wrong_sign_in(stack: Stack, source: str = "127.0.0.1") -> tuple[int, dict, bytes]:
    """A wrong password from this loopback address (each address is its own throttle bucket)."""
    host, port = stack.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30, source_address=(source, 0))
    headers = {**VIA_TLS, "Content-Type": "application/json"}
    connection.request("POST", "/api/token_obtain_pair/", body=SIGN_IN, headers=headers)
    response = connection.getresponse()
    answer = response.status, dict(response.getheaders()), response.read()
    connection.close()
    return answer


def sign_in_with_the_other_worker_busy(stack: Stack, busy: bool) -> int:
    """One counted sign-in from 127.0.0.1, alone, or while a sign-in from 127.0.0.2 (another
    bucket) keeps one worker hashing its password, so that the other worker answers it."""
    if not busy:
        return wrong_sign_in(stack)[0]
    with ThreadPoolExecutor(1) as pool:
        blocker = pool.submit(wrong_sign_in, stack, "127.0.0.2")
        time.sleep(0.05)  # taken by a worker, which hashes for ~0.3 s
        status = wrong_sign_in(stack)[0]
        blocker.result()
    return status


def answered(stack: Stack) -> list[tuple[int, int]]:
    """(worker pid, status) of every sign-in from 127.0.0.1 so far, from uWSGI's log."""
    return [
        (int(pid), int(status))
        for pid, address, status in LOGGED.findall(stack.log_text())
        if address == "127.0.0.1"
    ]


@pytest.mark.stack
def test_the_sign_in_throttle_is_one_count_across_two_workers():
    """With per-process counts each worker would let its own 20 through. The sign-ins go one
    at a time, each to the worker the other is not busy in; requests at once are
    test_throttle_counts.py's."""
    assert not missing_tools(), f"{missing_tools()} not installed: run ./start.sh test, which installs them"
    with running_stack(UWSGI_PROCESSES="2", OCR_AUTH_THROTTLE="20/minute") as stack:
        workers = {worker["pid"] for worker in stack.workers()}
        assert len(workers) == 2
        statuses = [sign_in_with_the_other_worker_busy(stack, busy=i % 2 == 1) for i in range(20)]
        assert statuses == [401] * 20
        time.sleep(0.5)  # uWSGI logs a request just after answering it
        counted = answered(stack)
        assert len(counted) == 20
        assert {pid for pid, _ in counted} == workers, f"one worker answered all 20: {counted}"

        # The 21st and later are 429 whichever worker answers.
        for attempt in range(6):
            assert sign_in_with_the_other_worker_busy(stack, busy=attempt % 2 == 1) == 429
        status, headers, body = wrong_sign_in(stack)
        assert (status, json.loads(body)["error"]["code"]) == (429, "throttled")
        assert int(headers["Retry-After"]) > 0
        time.sleep(0.5)
        refused = answered(stack)[20:]
        assert len(refused) == 7
        assert {status for _, status in refused} == {429}
        assert {pid for pid, _ in refused} == workers, f"one worker answered every 429: {refused}"
