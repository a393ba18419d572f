"""The throttles' counts (app/throttles.py) are exact under concurrent requests.

DRF's SimpleRateThrottle read a request history from the cache and wrote it back: requests
arriving together could each read the same history, so fewer were counted than were let
through (20 wrong sign-ins sent two at a time to two workers stored 19). The counters are
now database rows incremented in place; these tests send many requests at once through the
real database (SQLite's test file, or DATABASE_URL's PostgreSQL) and count the answers. The
throttles' clock stands still during a burst, so that none straddles two windows (which
would be right, but not one row to check), and moves to check the sliding window and wait.
"""

import hashlib
import http.client
import itertools
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import OperationalError, connection
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from app.models import RateCounter
from app.tests.clients import client_for
from app.tests.responses import assert_error
from app.tests.stack import VIA_TLS, Stack, missing_tools, running_stack, stack_database
from app.tests.throttle_clock import T0
from app.throttles import CLEANUP_BATCH, SignInRateThrottle

THREADS = 40
RATE = 10
WRONG = {"username": "nobody", "password": "wrong"}


def at_once(send, count: int = THREADS) -> list:
    """`send()` from `count` threads released together; each thread closes its own connection."""
    start = threading.Barrier(count)

    def one(_):
        start.wait()
        try:
            return send()
        finally:
            connection.close()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


@pytest.fixture
def fast_hashes(settings):
    """A wrong sign-in still hashes a password: fast hashes keep 40 of them quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.django_db(transaction=True)
def test_sign_ins_sent_at_once_let_exactly_the_rate_through(settings, fast_hashes, clock):
    settings.OCR_AUTH_THROTTLE = f"{RATE}/minute"
    answers = at_once(lambda: Client().post("/api/token_obtain_pair/", WRONG))
    statuses = sorted(response.status_code for response in answers)
    assert statuses == [401] * RATE + [429] * (THREADS - RATE)
    assert list(RateCounter.objects.values_list("key", "count")) == [("auth:addr-127.0.0.1", RATE)]
    refused = next(response for response in answers if response.status_code == 429)
    assert_error(refused, 429, "throttled")
    assert 1 <= int(refused["Retry-After"]) <= 60


@pytest.mark.django_db(transaction=True)
def test_the_log_in_page_and_the_api_at_once_share_one_exact_count(settings, fast_hashes, clock):
    settings.OCR_AUTH_THROTTLE = f"{RATE}/minute"
    turns = itertools.count()

    def send():
        if next(turns) % 2:
            return Client().post("/login/", WRONG)
        return Client().post("/api/token_obtain_pair/", WRONG)

    answers = at_once(send)
    assert sum(response.status_code != 429 for response in answers) == RATE
    assert RateCounter.objects.get().count == RATE
    refused = [response for response in answers if response.status_code == 429]
    pages = [response for response in refused if response["Content-Type"].startswith("text/html")]
    assert 0 < len(pages) < len(refused)  # both kinds were refused
    for page in pages:
        wait = int(page["Retry-After"])
        assert 1 <= wait <= 60
        assert f"Please wait {wait} seconds and try again." in page.content.decode()
    for response in refused:
        if response not in pages:
            assert_error(response, 429, "throttled")


@pytest.mark.django_db(transaction=True)
def test_ocr_requests_sent_at_once_let_exactly_the_rate_through(settings, user, clock):
    settings.OCR_USER_THROTTLE = f"{RATE}/minute"
    token = client_for(user)._credentials  # one access token, a client per thread

    def send():
        client = APIClient()
        client.credentials(**token)
        return client.post("/api/ocr/", {}, format="multipart")  # no image: a 400 once counted

    statuses = sorted(response.status_code for response in at_once(send))
    assert statuses == [400] * RATE + [429] * (THREADS - RATE)
    assert list(RateCounter.objects.values_list("key", "count")) == [(f"ocr_user:user-{user.pk}", RATE)]


def wrong_sign_in(stack: Stack) -> int:
    host, port = stack.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {**VIA_TLS, "Content-Type": "application/json"}
    connection.request("POST", "/api/token_obtain_pair/", body=json.dumps(WRONG), headers=headers)
    status = connection.getresponse().status
    connection.close()
    return status


@pytest.mark.stack
def test_sign_ins_sent_at_once_to_two_workers_let_exactly_the_rate_through():
    """The report: through nginx to two uWSGI processes, each with its own connection."""
    assert not missing_tools(), f"{missing_tools()} not installed: run ./start.sh test, which installs them"
    with (
        stack_database("onlineocr_counts") as database,
        running_stack(UWSGI_PROCESSES="2", OCR_AUTH_THROTTLE="20/minute", **database) as stack,
    ):
        start = threading.Barrier(THREADS)

        def one(_) -> int:
            start.wait()
            return wrong_sign_in(stack)

        with ThreadPoolExecutor(THREADS) as pool:
            statuses = sorted(pool.map(one, range(THREADS)))
        assert statuses == [401] * 20 + [429] * (THREADS - 20)
        assert wrong_sign_in(stack) == 429


# --- the sliding window and the wait ----------------------------------------------


@pytest.fixture
def sign_in(settings, db):
    """One sign-in through the throttle itself, from one address: (allowed, throttle)."""
    settings.OCR_AUTH_THROTTLE = "20/minute"
    request = RequestFactory().post("/api/token_obtain_pair/", REMOTE_ADDR="203.0.113.9")

    def attempt() -> tuple[bool, SignInRateThrottle]:
        throttle = SignInRateThrottle()
        return throttle.allow_request(request, None), throttle

    return attempt


def allowed_of(sign_in, count: int) -> int:
    return sum(sign_in()[0] for _ in range(count))


def test_a_burst_across_a_window_boundary_is_still_the_rate(clock, sign_in):
    """A fixed window would let 20 through at 0:59 and 20 more at 1:01."""
    clock.now = T0 + 59
    assert allowed_of(sign_in, 25) == 20
    clock.now = T0 + 61
    assert allowed_of(sign_in, 25) == 0
    clock.now = T0 + 90  # half the previous window is still in the last minute: 10 of it
    assert allowed_of(sign_in, 25) == 10
    clock.now = T0 + 120 + 29  # the previous window's 10 came at 1:30, still in the last minute
    assert allowed_of(sign_in, 25) == 14  # 10 × ½ + 14 ≤ 20
    clock.now = T0 + 120 + 31  # now they are older than a minute: they weigh nothing
    assert allowed_of(sign_in, 25) == 6  # 14 + 6


def test_refused_requests_are_not_counted(clock, sign_in):
    clock.now = T0 + 30
    assert allowed_of(sign_in, 30) == 20
    assert RateCounter.objects.get().count == 20
    clock.now = T0 + 75
    assert allowed_of(sign_in, 30) == 5  # 20 × ¾ + 5: the 10 refused earlier did not count


@pytest.mark.parametrize(
    ("burst_at", "then_at", "let_through", "wait"),
    [
        # 20 this window: in the next, once 20 × weight + 1 ≤ 20, at 1:03.
        (10, 20, 0, 43),
        # 20 at 0:00: a minute later they are all past, before 20 × weight + 1 ≤ 20.
        (0, 1, 0, 59),
        # 20 in the previous window: at 1:03 too, 2 s later.
        (59, 61, 0, 2),
        # Half of the previous window's 20 still counts: 10 more now, the next when
        # 20 × weight + 10 + 1 ≤ 20, at 1:33.
        (59, 90, 10, 3),
    ],
)
def test_wait_is_when_the_next_request_is_let_through(clock, sign_in, burst_at, then_at, let_through, wait):
    clock.now = T0 + burst_at
    assert allowed_of(sign_in, 20) == 20
    clock.now = T0 + then_at
    assert allowed_of(sign_in, let_through) == let_through
    allowed, throttle = sign_in()
    assert not allowed
    assert throttle.wait() == pytest.approx(wait)
    clock.now += throttle.wait() - 0.01
    assert not sign_in()[0]
    clock.now += 0.01
    assert sign_in()[0]


def test_a_rate_of_zero_refuses_everything_without_a_wait(clock, sign_in, settings):
    settings.OCR_AUTH_THROTTLE = "0/minute"
    allowed, throttle = sign_in()
    assert (allowed, throttle.wait()) == (False, None)


def test_an_empty_rate_is_no_limit_and_counts_nothing(clock, sign_in, settings):
    settings.OCR_AUTH_THROTTLE = ""
    assert allowed_of(sign_in, 30) == 30
    assert not RateCounter.objects.exists()


def test_the_retry_after_of_the_api_and_the_page_is_the_wait_rounded_up(clock, settings, db, fast_hashes):
    settings.OCR_AUTH_THROTTLE = "20/minute"
    clock.now = T0 + 59
    client = Client()
    assert [client.post("/login/", WRONG).status_code for _ in range(20)] == [200] * 20
    clock.now = T0 + 61.5  # the wait is 1.5 s
    api = client.post("/api/token_obtain_pair/", WRONG)
    assert_error(api, 429, "throttled")
    page = client.post("/login/", WRONG)
    assert (page.status_code, page["Retry-After"], api["Retry-After"]) == (429, "2", "2")
    assert page["Content-Type"].startswith("text/html")


def test_expired_windows_are_deleted_when_a_window_starts(clock, settings, db):
    settings.OCR_AUTH_THROTTLE = "5/minute"
    factory = RequestFactory()
    for address in range(CLEANUP_BATCH + 5):
        SignInRateThrottle().allow_request(
            factory.post("/", REMOTE_ADDR=f"10.0.{address // 250}.{address % 250}"), None
        )
    assert RateCounter.objects.count() == CLEANUP_BATCH + 5
    clock.now = T0 + 60  # the rows still weigh on this window: kept
    SignInRateThrottle().allow_request(factory.post("/", REMOTE_ADDR="198.51.100.1"), None)
    assert RateCounter.objects.count() == CLEANUP_BATCH + 6
    clock.now = T0 + 120  # they no longer matter: a new row deletes a bounded batch of them
    SignInRateThrottle().allow_request(factory.post("/", REMOTE_ADDR="198.51.100.2"), None)
    assert RateCounter.objects.filter(window=T0).count() == 5
    assert RateCounter.objects.filter(window__gt=T0).count() == 2
    SignInRateThrottle().allow_request(factory.post("/", REMOTE_ADDR="198.51.100.3"), None)
    assert not RateCounter.objects.filter(window=T0).exists()


def test_a_long_address_is_one_hashed_bucket(clock, settings, db):
    """With proxies in front the address is an X-Forwarded-For entry, which may be anything."""
    settings.OCR_AUTH_THROTTLE = "3/minute"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    request = RequestFactory().post("/", HTTP_X_FORWARDED_FOR="x" * 500)
    assert [SignInRateThrottle().allow_request(request, None) for _ in range(4)] == [True] * 3 + [False]
    digest = hashlib.sha256(("addr-" + "x" * 500).encode()).hexdigest()
    assert list(RateCounter.objects.values_list("key", flat=True)) == [f"auth:sha256-{digest}"]


def test_a_database_that_is_down_is_a_503_database_unavailable(db, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(type(RateCounter.objects.none()), "update", down)
    response = APIClient().post("/api/token_obtain_pair/", WRONG, format="json")
    assert_error(response, 503, "database_unavailable")
    page = Client(raise_request_exception=False).post("/login/", WRONG, HTTP_ACCEPT="text/html")
    assert (page.status_code, page["Content-Type"].split(";")[0]) == (503, "text/html")


def test_the_throttled_password_page_keeps_its_signed_in_user(client, user):
    """The page's throttle reads the address from the Django request itself (DRF's Request
    around it would set the request's user to its own, anonymous, one)."""
    client.force_login(user)
    new = "another fine passphrase 42"
    data = {"old_password": "correct horse battery staple", "new_password1": new, "new_password2": new}
    response = client.post("/password/", data)
    assert (response.status_code, response["Location"]) == (302, "/password/")
    user.refresh_from_db()
    assert user.check_password(new)
    assert RateCounter.objects.get().key == "auth:addr-127.0.0.1"
