"""Isolation: with Alice's ids, her key ids and her revoked key, Bob reaches nothing of hers.

Alice owns records of every kind (done, failed, queued, a PDF with pages, one in a batch),
an active and a revoked API key, and a batch. Her username, texts, file names, errors and
key names all carry SECRET, so a response that holds SECRET (or her keys, or her image
bytes) is a leak. Bob tries every route, signed in each way it accepts:

- another user's id answers exactly what a missing id answers (404 on the routes that take
  ids: their existence does not show), and nothing of Alice's changes;
- Bob's lists, searches, filters and counts are the same with and without Alice's rows;
- Bob's key, Alice's revoked key and ids in a request body never put a row in her name, and
  the same bytes Alice uploaded are read again for Bob, never answered from her record;
- /admin/ sends non-staff to the login page on every route, GET or POST.

Each refusal is paired with Alice's own request, which must reach the object: a case that
would pass on a broken URL fails instead.

test_every_route_has_an_isolation_case walks the URL resolver: a new route fails it until it
gets a case here or a reason in NOT_OWNER_SCOPED. /media/ behind the real nginx is covered by
test_production_stack.py, and presigned S3 links by test_s3_storage.py.
"""

import base64
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLResolver, get_resolver, resolve
from rest_framework.test import APIClient

from app import services
from app.models import ApiKey, Batch, OcrRecord
from app.tests.clients import client_for
from app.tests.factories import OcrRecordFactory, UserFactory
from app.tests.imaging import encode, render
from app.tests.responses import assert_error

SECRET = "qzalicesecret"  # in all of Alice's and nowhere else: found in a response, it is a leak
# Words to search Alice's texts and file names for: not SECRET, which a page echoes back
# in its search box.
TEXT_WORD, NAME_WORD = "twalicetext", "fnalicefile"
PASSWORD = "correct horse battery staple"  # UserFactory's
MISSING = 987_654_321  # an id nothing has
HTML = {"Accept": "text/html,application/xhtml+xml"}
IMAGE = encode(render(["ab12"], size=40, pad=8))
IMAGE_B64 = base64.b64encode(IMAGE).decode()
BOX = [[0, 0], [200, 0], [200, 50], [0, 50]]
PAGES = [f"invoice {SECRET} page one", f"{SECRET} page two"]

Status = OcrRecord.Status


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Every case makes three accounts: PBKDF2 at a second each would dominate the run."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# ---- the two users ---------------------------------------------------------------------


@dataclass
class World:
    alice: Any
    bob: Any
    ids: dict[str, int]  # Alice's objects: record kinds, "batch", "key", "revoked"
    plain: dict[str, str] = field(repr=False)  # the keys themselves: "alice", "revoked", "bob"
    images: list[bytes] = field(repr=False)  # the bytes of Alice's stored files

    def leaks(self, body: bytes) -> list[str]:
        """What of Alice's is in this response body (nothing, for anyone but her)."""
        markers = {"SECRET": SECRET.encode(), "key": self.plain["alice"].encode()}
        markers["revoked key"] = self.plain["revoked"].encode()
        found = [name for name, marker in markers.items() if marker in body]
        return found + ["image bytes" for image in self.images if image in body]


def _pdf() -> bytes:
    first, second = (render([text]) for text in PAGES)
    return encode(first, "PDF", save_all=True, append_images=[second])


def _alices_records(alice, batch: Batch) -> dict[str, OcrRecord]:
    def mine(kind: str, **fields) -> OcrRecord:
        fields.setdefault("file_name", f"{kind}-{NAME_WORD}-{SECRET}.png")
        return OcrRecordFactory(owner=alice, **fields)

    pdf_lines = [{"text": text, "box": BOX, "score": 0.9, "page": n} for n, text in enumerate(PAGES, 1)]
    return {
        "done": mine("done", text=f"invoice {SECRET} total {TEXT_WORD}"),
        "failed": mine("failed", status=Status.FAILED, text="", lines=[], error=f"unreadable {SECRET}"),
        "queued": mine("queued", status=Status.QUEUED, text="", lines=[], duration_ms=0),
        "pdf": mine(
            "pdf",
            file_name=f"pdf-{NAME_WORD}-{SECRET}.pdf",
            image=ContentFile(_pdf(), name="doc.pdf"),
            text="\n\n".join(PAGES),
            lines=pdf_lines,
            pages_done=2,
            pages_total=2,
            extra={
                "pages": [{"page": n, "width": 200, "height": 50, "text": t} for n, t in enumerate(PAGES, 1)]
            },
        ),
        "batched": mine("batched", batch=batch, text=f"invoice {SECRET} batched {TEXT_WORD}"),
    }


@pytest.fixture
def world(db) -> World:
    alice, bob = UserFactory(username=f"alice{SECRET}"), UserFactory(username="bob")
    batch = Batch.objects.create(owner=alice)
    records = _alices_records(alice, batch)
    key, plain_key = services.create_api_key(owner=alice, name=f"scanner {SECRET}")
    revoked, plain_revoked = services.create_api_key(owner=alice, name=f"old {SECRET}")
    services.revoke_api_key(api_key=revoked)
    plain_bob = services.create_api_key(owner=bob, name="bob's scanner")[1]
    # Bob's own rows, so that his lists have something that filters and searches can select.
    OcrRecordFactory(owner=bob, text="invoice from bob")
    OcrRecordFactory(owner=bob, engine="rapidocr", status=Status.FAILED, text="", lines=[])
    images = []
    for record in records.values():
        with record.image.open("rb") as stored:
            images.append(stored.read())
    return World(
        alice=alice,
        bob=bob,
        ids={
            **{kind: r.pk for kind, r in records.items()},
            "batch": batch.pk,
            "key": key.pk,
            "revoked": revoked.pk,
        },
        plain={"alice": plain_key, "revoked": plain_revoked, "bob": plain_bob},
        images=images,
    )


@pytest.fixture
def state(media_files) -> Callable[[], tuple]:
    """Every row and file that a write could touch, to compare before and after a request."""

    def snapshot() -> tuple:
        records = OcrRecord.objects.values_list("pk", "owner", "status", "text", "batch", "image")
        keys = ApiKey.objects.values_list("pk", "owner", "name", "revoked_at")
        return sorted(records), sorted(keys), sorted(Batch.objects.values_list("pk", "owner")), media_files()

    return snapshot


def signed_in(world: World, who: str, channel: str):
    """A client for `who` ("alice", "bob" or "anon"): "jwt", "key" (X-API-Key), "session" (a
    browser on the pages) or "browser api" (the pages' scripts calling the API with the session)."""
    accept = {"Accept": "application/json"} if channel == "browser api" else HTML
    if who == "anon":
        return APIClient() if channel in ("jwt", "key") else Client(headers=accept)
    user = world.alice if who == "alice" else world.bob
    if channel == "jwt":
        return client_for(user)
    if channel == "key":
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=world.plain[who])
        return client
    client = Client(headers=accept)
    client.force_login(user)
    return client


def body(response) -> bytes:
    if not response.streaming:
        return response.content
    if not hasattr(response, "read_once"):  # a stream can be read once: keep what it gave
        response.read_once = b"".join(response.streaming_content)
    return response.read_once


def is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def upload(name: str = "scan.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, IMAGE, content_type="image/png")


# ---- another user's id answers as a missing one ----------------------------------------


@dataclass(frozen=True)
class Probe:
    method: str
    path: str  # `{id}` is the id tried
    channel: str  # how both users sign in: see signed_in
    bob: int  # what Bob gets, for Alice's id and for a missing one alike
    alice: int  # what Alice gets for her own: the route does reach the object

    def send(self, client, pk: int):
        return getattr(client, self.method.lower())(self.path.format(id=pk))


# Every kind of record is tried on the main reads and deletes; the other ways in on two.
EVERY_KIND_PROBES = [
    Probe("GET", "/api/history/{id}/", "jwt", 404, 200),
    Probe("GET", "/api/history/{id}/image/", "jwt", 404, 200),
    Probe("DELETE", "/api/history/{id}/", "jwt", 404, 204),
    Probe("GET", "/records/{id}/", "session", 404, 200),
    Probe("POST", "/records/{id}/delete/", "session", 404, 302),
]
SOME_KINDS_PROBES = [
    Probe("GET", "/api/history/{id}/", "key", 404, 200),
    Probe("GET", "/api/history/{id}/", "browser api", 404, 200),
    Probe("DELETE", "/api/history/{id}/", "key", 404, 204),
    Probe("DELETE", "/api/history/{id}/", "browser api", 404, 204),
    Probe("PUT", "/api/history/{id}/", "jwt", 405, 405),  # records are never edited
    Probe("PATCH", "/api/history/{id}/", "jwt", 405, 405),
    Probe("GET", "/api/history/{id}/image/", "key", 404, 200),
    Probe("GET", "/api/history/{id}/image/", "session", 404, 200),
    Probe("GET", "/records/{id}/delete/", "session", 404, 200),
    Probe("HEAD", "/api/history/{id}/image/", "jwt", 404, 200),
    Probe("OPTIONS", "/api/history/{id}/", "jwt", 200, 200),  # describes the route, not the record
]
BATCH_PROBES = [
    Probe("GET", "/api/batches/{id}/", "jwt", 404, 200),
    Probe("GET", "/api/batches/{id}/", "key", 404, 200),
]
KEY_PROBES = [
    Probe("DELETE", "/api/keys/{id}/", "jwt", 404, 204),
    Probe("DELETE", "/api/keys/{id}/", "browser api", 404, 204),
    Probe("DELETE", "/api/keys/{id}/", "key", 403, 403),  # keys never manage keys, whoever's
    Probe("GET", "/api/keys/{id}/", "jwt", 405, 405),  # a key is shown once, when made
    Probe("POST", "/keys/{id}/revoke/", "session", 404, 302),
    Probe("GET", "/keys/{id}/revoke/", "session", 405, 405),
]
RECORD_KINDS = ("done", "failed", "queued", "pdf", "batched")
PROBES = [
    (EVERY_KIND_PROBES, RECORD_KINDS),
    (SOME_KINDS_PROBES, ("done", "pdf")),
    (BATCH_PROBES, ("batch",)),
    (KEY_PROBES, ("key", "revoked")),
]
OBJECT_CASES = [
    pytest.param(target, probe, id=f"{probe.method} {probe.path} {probe.channel} {target}")
    for probes, targets in PROBES
    for probe in probes
    for target in targets
]


@pytest.mark.parametrize(("target", "probe"), OBJECT_CASES)
def test_another_users_id_answers_as_a_missing_one(world, state, target, probe):
    bob = signed_in(world, "bob", probe.channel)
    before = state()
    response = probe.send(bob, world.ids[target])
    missing = probe.send(bob, MISSING)
    assert (response.status_code, missing.status_code) == (probe.bob, probe.bob)
    if is_json(response) and probe.method != "HEAD":
        assert response.json() == missing.json()
    assert world.leaks(body(response)) == []
    assert state() == before
    owner = probe.send(signed_in(world, "alice", probe.channel), world.ids[target])
    assert owner.status_code == probe.alice
    if probe.method == "GET" and probe.alice == 200:
        assert world.leaks(body(owner)), "Alice's own read shows her data: the scan would see a leak"


# ---- Bob's lists are the same with or without Alice's rows ------------------------------

HISTORY_QUERIES = [
    {},
    {"search": TEXT_WORD},
    {"search": "invoice"},  # a word both have
    {"search": NAME_WORD},
    {"ordering": "-duration_ms"},
    {"ordering": "file_name"},
    {"engine": "tesseract"},
    {"status": "failed"},
    {"status": "queued"},
    {"created_after": "2000-01-01", "ordering": "engine"},
    {"page_size": 1, "page": 2},
    {"page_size": 100},
]
LIST_CASES = [
    *[("jwt", "/api/history/", query) for query in HISTORY_QUERIES],
    # The page reads through the same selector as the API (selectors.history): the main ones again.
    *[("session", "/history/", query) for query in HISTORY_QUERIES[:4] + HISTORY_QUERIES[7:9]],
    ("key", "/api/history/", {"search": TEXT_WORD}),
    ("browser api", "/api/history/", {"search": "invoice"}),
    ("jwt", "/api/keys/", {}),
    ("session", "/keys/", {}),
    # The export: the whole history as a file, with the list's filters.
    ("jwt", "/api/history/export/", {}),
    ("key", "/api/history/export/", {"format": "jsonl"}),
    ("session", "/api/history/export/", {"search": TEXT_WORD}),
]


def what_is_listed(response) -> Any:
    """The rows a list shows and its count: the JSON itself, the file, or the page's context."""
    if response.streaming:
        return body(response)
    if is_json(response):
        return response.json()
    if "page" in response.context:
        page = response.context["page"]
        return page.paginator.count, [record.pk for record in page]
    return [key.pk for key in response.context["keys"]]


@pytest.mark.parametrize(("channel", "path", "query"), LIST_CASES, ids=lambda v: str(v) or "-")
def test_bobs_lists_and_counts_do_not_see_alices_rows(world, channel, path, query):
    alices = signed_in(world, "alice", channel).get(path, query)
    assert world.leaks(body(alices)), "the same query finds Alice's rows for her"
    bob = signed_in(world, "bob", channel)
    response = bob.get(path, query)
    assert response.status_code == 200
    assert world.leaks(body(response)) == []
    listed = what_is_listed(response)
    world.alice.delete()  # her records, keys and batch go with her
    assert what_is_listed(bob.get(path, query)) == listed


# ---- nothing lands in Alice's name ------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # `{done}`, `{batch}`...: Alice's ids
    data: Callable[[World], Any] | None = None  # made afresh for each request: uploads are read once
    format: str | None = None
    content_type: str | None = None

    def send(self, client, world: World):
        kwargs = {"format": self.format} if self.format else {}
        if self.content_type:
            kwargs["content_type"] = self.content_type
        data = self.data(world) if self.data else None
        return getattr(client, self.method.lower())(self.path.format(**world.ids), data, **kwargs)


def market_body(world: World) -> dict:
    return {"image": IMAGE_B64, "configure": {"engine": "ddddocr"}}


FORM = "application/x-www-form-urlencoded"


def market_demo_body(world: World) -> str:
    return json.dumps({"image": IMAGE_B64, "configure": json.dumps({})})


REVOKED_KEY_CALLS = {
    "api ocr": Call("POST", "/api/ocr/", lambda w: {"image": upload(), "engine": "ddddocr"}),
    "api ocr, market body": Call("POST", "/api/ocr/", market_body, format="json"),
    "api batch": Call("POST", "/api/ocr/batch/", lambda w: {"images": [upload()], "engine": "ddddocr"}),
    "api slide": Call("POST", "/api/slide/", lambda w: {"target": upload(), "background": upload()}),
    "api history": Call("GET", "/api/history/", lambda w: {"search": TEXT_WORD}),
    "api record": Call("GET", "/api/history/{done}/"),
    "api record delete": Call("DELETE", "/api/history/{done}/"),
    "api image": Call("GET", "/api/history/{pdf}/image/"),
    "api batch detail": Call("GET", "/api/batches/{batch}/"),
    "api keys": Call("GET", "/api/keys/"),
    "ocr_api_server ocr": Call("POST", "/ocr/file/json", lambda w: {"image": upload()}),
    "ocr_api_server b64": Call("POST", "/ocr/b64", lambda w: IMAGE_B64, content_type="text/plain"),
    "ocr_api_server det": Call("POST", "/det/file", lambda w: {"image": upload()}),
    "ocr_api_server slide": Call(
        "POST", "/slide/compare/file/json", lambda w: {"target_img": upload(), "bg_img": upload()}
    ),
    "rapidocr_api": Call("POST", "/ocr", lambda w: {"image_file": upload()}),
    "ocr_api_server 2024 ocr": Call("POST", "/ocr", lambda w: {"file": upload()}),
    "ocr_api_server 2024 detection": Call("POST", "/detection", lambda w: {"image": IMAGE_B64}),
    "ocr_api_server 2024 slide": Call(
        "POST", "/slide_match", lambda w: {"target_file": upload(), "background_file": upload()}
    ),
    # the market's stock demo: a JSON body labelled as a form (urllib's default)
    "market general": Call("POST", "/api/predict/ocr_general", market_demo_body, content_type=FORM),
    "market idcard": Call("POST", "/rest/160601/ocr/ocr_idcard.json", market_demo_body, content_type=FORM),
}
KEY_HEADERS = {
    "x-api-key": lambda key: {"HTTP_X_API_KEY": key},
    "appcode": lambda key: {"HTTP_AUTHORIZATION": f"APPCODE {key}"},
    "basic": lambda key: {"HTTP_AUTHORIZATION": f"Basic {key}"},
    "basic user:key": lambda key: {
        "HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"alice:{key}".encode()).decode()
    },
}


# Each call is sent with one of the four ways to send a key, in turn: each way is tried
# on reads, writes and dialects.
REVOKED_CASES = [
    pytest.param(call, header, id=f"{call} {header}")
    for call, header in zip(REVOKED_KEY_CALLS, [*KEY_HEADERS] * len(REVOKED_KEY_CALLS), strict=False)
]


@pytest.mark.parametrize(("call", "header"), REVOKED_CASES)
def test_alices_revoked_key_reads_and_writes_nothing(world, state, settings, call, header):
    """A revoked key is refused, even where keyless requests are allowed: never downgraded
    to anonymous, never counted as a use."""
    client = APIClient()
    client.credentials(**KEY_HEADERS[header](world.plain["revoked"]))
    before = state()
    for anonymous_allowed in (False, True):
        settings.OCR_ALLOW_ANONYMOUS = anonymous_allowed
        response = REVOKED_KEY_CALLS[call].send(client, world)
        assert response.status_code == 401
        assert world.leaks(body(response)) == []
        assert state() == before
    assert ApiKey.objects.get(pk=world.ids["revoked"]).usage_count == 0


INJECTIONS = {
    "api ocr": Call(
        "POST",
        "/api/ocr/",
        lambda w: {"image": upload(), "engine": "ddddocr", "owner": w.alice.pk, "batch": w.ids["batch"]},
    ),
    "api ocr, json": Call(
        "POST",
        "/api/ocr/",
        lambda w: {
            "image_base64": IMAGE_B64,
            "engine": "ddddocr",
            "user_id": w.alice.pk,
            "id": w.ids["done"],
        },
        format="json",
    ),
    "api ocr, market configure": Call(
        "POST",
        "/api/ocr/",
        lambda w: {**market_body(w), "owner": w.alice.pk, "batch_id": w.ids["batch"]},
        format="json",
    ),
    "api batch": Call(
        "POST",
        "/api/ocr/batch/",
        lambda w: {"images": [upload()], "engine": "ddddocr", "owner": w.alice.pk, "batch": w.ids["batch"]},
    ),
    "api keys": Call("POST", "/api/keys/", lambda w: {"name": "mine", "owner": w.alice.pk}, format="json"),
}


def owned_by(snapshot: tuple, owner_pk: int) -> list[list]:
    """The records, keys and batches of one user in a `state()` snapshot."""
    return [[row for row in rows if row[1] == owner_pk] for rows in snapshot[:3]]


@pytest.mark.parametrize("call", INJECTIONS)
def test_ids_in_a_body_never_file_anything_under_alice(world, state, call):
    """Bob names Alice, her record or her batch in owner-like fields: refused as unknown
    fields, or ignored and the row is his; either way nothing of hers changes."""
    before = state()
    response = INJECTIONS[call].send(signed_in(world, "bob", "jwt"), world)
    assert world.leaks(body(response)) == []
    after = state()
    assert owned_by(after, world.alice.pk) == owned_by(before, world.alice.pk)
    assert not OcrRecord.objects.filter(batch=world.ids["batch"]).exclude(owner=world.alice).exists()
    if response.status_code == 400:
        assert_error(response, 400, "unknown_field")
        assert after == before
    else:
        assert response.status_code in (201, 202), response.content
        assert owned_by(after, world.bob.pk) != owned_by(before, world.bob.pk)  # made, and his


# ---- the same bytes are read again for Bob, never answered from Alice's record -----------


@dataclass(frozen=True)
class Dialect:
    scheme: str  # how its clients sign in: "jwt", or a KEY_HEADERS name with the user's key
    call: Call
    text: Callable[[Any], str]  # the recognized text in its answer
    created: int  # the status of a new read
    anonymous: int  # the status without credentials, with OCR_ALLOW_ANONYMOUS on


def json_text(response) -> str:
    return response.json()["text"]


DIALECTS = {
    "api": Dialect("jwt", REVOKED_KEY_CALLS["api ocr"], json_text, 201, 401),
    # a market client takes any status but 200 for a failure
    "api, aliyun market": Dialect("appcode", REVOKED_KEY_CALLS["api ocr, market body"], json_text, 200, 401),
    "aliyun market general": Dialect(
        "appcode",
        REVOKED_KEY_CALLS["market general"],
        lambda r: " ".join(item["word"] for item in r.json()["ret"]),
        200,
        200,
    ),
    "ocr_api_server file": Dialect(
        "basic", REVOKED_KEY_CALLS["ocr_api_server ocr"], lambda r: r.json()["result"], 200, 200
    ),
    "ocr_api_server b64": Dialect(
        "basic user:key", REVOKED_KEY_CALLS["ocr_api_server b64"], lambda r: r.content.decode(), 200, 200
    ),
    "ocr_api_server 2024": Dialect(
        "basic", REVOKED_KEY_CALLS["ocr_api_server 2024 ocr"], lambda r: r.json()["data"], 200, 200
    ),
    "rapidocr_api": Dialect(
        "x-api-key",
        REVOKED_KEY_CALLS["rapidocr_api"],
        lambda r: " ".join(line["rec_txt"] for line in r.json().values()),
        200,
        200,
    ),
}


def dialect_client(world: World, who: str, scheme: str):
    if who == "anon":
        return APIClient()
    if scheme == "jwt":
        return signed_in(world, who, "jwt")
    client = APIClient()
    client.credentials(**KEY_HEADERS[scheme](world.plain[who]))
    return client


@pytest.mark.parametrize("name", DIALECTS)
def test_the_same_bytes_are_read_again_for_bob_never_answered_from_alices_record(world, settings, name):
    dialect = DIALECTS[name]
    sha256 = hashlib.sha256(IMAGE).hexdigest()
    first = dialect.call.send(dialect_client(world, "alice", dialect.scheme), world)
    assert first.status_code == dialect.created, first.content
    # Her record of these bytes now says SECRET: any answer drawn from it shows.
    hers = OcrRecord.objects.filter(owner=world.alice, sha256=sha256)
    assert hers.update(text=SECRET, lines=[{"text": SECRET, "box": BOX, "score": 0.9}]) == 1
    again = dialect.call.send(dialect_client(world, "alice", dialect.scheme), world)
    assert SECRET in dialect.text(again), "this dialect answers a repeat from the earlier record"

    settings.OCR_ALLOW_ANONYMOUS = True
    bob = dialect.call.send(dialect_client(world, "bob", dialect.scheme), world)
    assert bob.status_code == dialect.created, bob.content
    anonymous = dialect.call.send(dialect_client(world, "anon", dialect.scheme), world)
    assert anonymous.status_code == dialect.anonymous
    for response in (bob, anonymous):
        assert world.leaks(body(response)) == []
    assert hers.count() == 1
    assert OcrRecord.objects.filter(owner=world.bob, sha256=sha256).count() == 1  # his own read
    assert not OcrRecord.objects.filter(owner__isnull=True).exists()


# ---- uploads: only through the owner-checked image route --------------------------------


@pytest.mark.parametrize("accel", ["", "/media/"], ids=["streamed", "x-accel-redirect"])
@pytest.mark.parametrize("kind", ["done", "pdf"])
def test_uploads_are_served_only_to_their_owner_and_never_from_media(world, settings, accel, kind):
    settings.OCR_MEDIA_ACCEL_REDIRECT = accel
    record = OcrRecord.objects.get(pk=world.ids[kind])
    route = f"/api/history/{record.pk}/image/"
    bob = signed_in(world, "bob", "jwt").get(route)
    assert bob.status_code == 404
    assert "X-Accel-Redirect" not in bob
    assert "Location" not in bob
    assert world.leaks(body(bob)) == []
    for who in ("alice", "bob", "anon"):  # Django never serves /media/, not even to the owner
        direct = signed_in(world, who, "session").get(f"/media/{record.image.name}")
        assert direct.status_code == 404
        assert world.leaks(body(direct)) == []
    own = signed_in(world, "alice", "jwt").get(route)
    assert own.status_code == 200
    if accel:
        assert own["X-Accel-Redirect"] == f"/media/{record.image.name}"
    else:
        with record.image.open("rb") as stored:
            assert body(own) == stored.read()


# ---- signing in as Alice -----------------------------------------------------------------


def test_a_wrong_password_for_alices_name_answers_as_an_unknown_name(world, anon):
    def token(username: str, password: str):
        return anon.post(
            "/api/token_obtain_pair/", {"username": username, "password": password}, format="json"
        )

    wrong = token(world.alice.username, "not her password at all")
    unknown = token("nobody-by-that-name", "not her password at all")
    assert (wrong.status_code, unknown.status_code) == (401, 401)
    assert wrong.json() == unknown.json()
    assert token(world.alice.username, PASSWORD).status_code == 200


# ---- the admin ---------------------------------------------------------------------------


def all_routes(patterns=None, prefix: str = "") -> list[str]:
    """Every route the URL resolver knows, spelt as ResolverMatch.route spells it."""
    routes = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        part = str(pattern.pattern)
        route = prefix + (part[1:] if prefix and part.startswith("^") else part)
        if isinstance(pattern, URLResolver):
            routes += all_routes(pattern.url_patterns, route)
        else:
            routes.append(route)
    return routes


ADMIN_ROUTES = sorted(route for route in all_routes() if route.startswith("admin/"))


def admin_url(route: str, world: World) -> str:
    """A URL of this admin route naming one of Alice's objects (or her user)."""
    pk = world.ids["done"]
    if "apikey" in route:
        pk = world.ids["key"]
    elif "auth/user" in route:
        pk = world.alice.pk
    path = route.replace("(?P<url>.*)", "no/such/page/")
    path = re.sub(r"\(\?P<\w+>([^|)]*)[^)]*\)", r"\1", path)  # a choice of names: the first
    path = re.sub(r"<(?:\w+:)?\w+>", str(pk), path)
    url = "/" + path.replace("^", "").replace("$", "")
    assert resolve(url).route == route
    return url


def admin_post(world: World) -> dict:
    """The changelist's CSV export of Alice's records, and every delete page's "yes"."""
    return {"action": "export_csv", "_selected_action": [world.ids[k] for k in RECORD_KINDS], "post": "yes"}


@pytest.mark.parametrize("route", ADMIN_ROUTES)
def test_the_admin_refuses_non_staff_on_every_route(world, state, client, route):
    """Bob and anonymous visitors are sent to the login page (GET or POST); staff without
    permissions may see the admin's frame but nothing of Alice's."""
    url = admin_url(route, world)
    before = state()
    visitors = {who: signed_in(world, who, "session") for who in ("bob", "anon")}
    for who, method in [("bob", "GET"), ("bob", "POST"), ("anon", "GET"), ("anon", "POST")]:
        visitor = visitors[who]
        response = visitor.get(url) if method == "GET" else visitor.post(url, admin_post(world))
        assert world.leaks(body(response)) == [], (who, method)
        if route == "admin/login/":
            assert response.status_code == 200  # the form itself (a POST without a password fails)
        else:
            assert response.status_code == 302, (who, method)
            to = "/admin/" if route == "admin/logout/" else "/admin/login/"
            assert response["Location"].startswith(to), (who, method)
    client.force_login(UserFactory(is_staff=True))
    clerk = client.get(url)
    assert clerk.status_code in (200, 302, 403, 404, 405)
    assert world.leaks(body(clerk)) == []
    assert state() == before


def test_staff_see_every_users_records_and_export_them(world, client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    changelist = client.get("/admin/app/ocrrecord/", {"q": SECRET})
    assert {r.pk for r in changelist.context["cl"].result_list} == {world.ids[k] for k in RECORD_KINDS}
    assert SECRET in client.get(f"/admin/app/ocrrecord/{world.ids['done']}/change/").content.decode()
    image = client.get(f"/admin/app/ocrrecord/{world.ids['done']}/image/")
    assert body(image) in world.images
    export = client.post("/admin/app/ocrrecord/", admin_post(world))
    assert export["Content-Type"] == "text/csv; charset=utf-8"
    assert body(export).decode().count(f"{world.alice.username}") == len(RECORD_KINDS)


# ---- every route is covered ---------------------------------------------------------------

NOT_OWNER_SCOPED = {
    "api/schema/": "the API's description: no user data",
    "docs/": "Swagger UI over the schema: no user data",
    "redoc/": "ReDoc over the schema: no user data",
    "api/register/": "makes a new account; takes no ids",
    "api/token_refresh/": "takes a refresh token, never an id (forged tokens: the bad-input suite)",
    "api/engines/": "the engines' status, the same for everyone",
    "api/health/": "the server's status, the same for everyone",
    "ping": "ocr_api_server's liveness probe: `pong`",
    "": "the upload page: a form, no records (it posts to /api/ocr/)",
    "signup/": "makes a new account; takes no ids",
    "login/": "signs in; a wrong password for Alice's name is tested on the token route",
    "logout/": "ends the caller's own session",
    "api/token/logout/": "takes a refresh token, which is its own credential, never an id",
    "api/password/": "changes the caller's own password; takes no ids",
    "password/": "the caller's own password-change form; takes no ids",
}


def covered_routes(world_ids: dict[str, int]) -> set[str]:
    paths = [probe.path.format(id=1) for probes, _ in PROBES for probe in probes]
    paths += [path for _, path, _ in LIST_CASES]
    paths += [call.path.format(**world_ids) for call in [*REVOKED_KEY_CALLS.values(), *INJECTIONS.values()]]
    paths += [dialect.call.path for dialect in DIALECTS.values()]
    paths += ["/api/token_obtain_pair/"]
    return {resolve(path).route for path in paths}


def test_every_route_has_an_isolation_case():
    routes = set(all_routes())
    covered = covered_routes(dict.fromkeys([*RECORD_KINDS, "batch", "key", "revoked"], 1))
    missing = routes - covered - set(NOT_OWNER_SCOPED) - set(ADMIN_ROUTES)
    assert not missing, f"routes with no isolation case nor a reason in NOT_OWNER_SCOPED: {sorted(missing)}"
    assert not set(NOT_OWNER_SCOPED) - routes, "NOT_OWNER_SCOPED names routes that are gone"
    assert not set(NOT_OWNER_SCOPED) & covered, "a route is both covered and listed as not owner-scoped"


@pytest.mark.parametrize("route", NOT_OWNER_SCOPED)
def test_routes_without_owner_data_show_none_of_alices(world, route):
    url = "/" + route
    for channel in ("jwt", "session"):
        response = signed_in(world, "bob", channel).get(url)
        assert response.status_code < 500
        assert world.leaks(body(response)) == []
