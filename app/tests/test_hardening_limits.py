"""Issue 19, items 7 (batches), 9 and 10: options only where they apply, bounded text fields,
all-or-nothing batches and zip archives read within bounded memory."""

import base64
import io
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework import serializers
from rest_framework.test import APIClient

from app import inputs, services
from app.api import serializers as api_serializers
from app.errors import OcrError
from app.models import Batch, OcrRecord
from app.tests.factories import UserFactory
from app.tests.imaging import encode, english_lines, render, zip_of
from app.tests.pdfs import raw_pdf
from app.tests.responses import assert_error

PNG = encode(render(english_lines(1, seed=91)))
CAPTCHA = encode(render(["ab12"], size=40, pad=10))
EMPTY_TREE_PDF = raw_pdf(kids=b"")  # /Kids [] /Count 3: a PDF that claims pages it has not
MB = 1024 * 1024


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ocr(client: APIClient, data: bytes = PNG, **fields):
    return client.post("/api/ocr/", {"image_base64": b64(data), **fields}, format="json")


def nothing_stored(media_files) -> bool:
    return not Batch.objects.exists() and not OcrRecord.objects.exists() and not media_files()


# --- item 9: an option where it does not apply is refused ------------------------------


@pytest.mark.parametrize(
    ("fields", "option", "said"),
    [
        ({"engine": "tesseract", "charset": "abc"}, "charset", "engine=tesseract task=document"),
        ({"engine": "rapidocr", "charset": "0"}, "charset", "engine=rapidocr task=document"),
        ({"engine": "ddddocr", "task": "math", "charset": "0"}, "charset", "engine=ddddocr task=math"),
        ({"engine": "ddddocr", "task": "detect", "charset": "0"}, "charset", "engine=ddddocr task=detect"),
        ({"engine": "tesseract", "rotate": True}, "rotate", "engine=tesseract task=document"),
        ({"engine": "ddddocr", "task": "text", "rotate": True}, "rotate", "engine=ddddocr task=text"),
        ({"engine": "auto", "lang": "eng", "rotate": True}, "rotate", "engine=auto chose tesseract"),
        ({"engine": "auto", "task": "math", "charset": "0"}, "charset", "engine=auto chose ddddocr"),
        ({"lang": "eng", "charset": "x"}, "charset", "engine=auto chose tesseract"),  # the default: auto
    ],
    ids=[
        "charset-tesseract",
        "charset-rapidocr",
        "charset-math",
        "charset-detect",
        "rotate-tesseract",
        "rotate-ddddocr",
        "rotate-auto-tesseract",
        "charset-auto-math",
        "charset-default-engine",
    ],
)
def test_an_option_the_engine_and_task_do_not_read_is_a_400(api, media_files, fields, option, said):
    error = assert_error(ocr(api, CAPTCHA, **fields), 400, "unsupported_option")
    assert error["option"] == option
    assert error["message"].startswith(f"'{option}' applies only to engine=")
    assert said in error["message"]
    assert nothing_stored(media_files)


def test_a_megabyte_charset_is_refused_before_any_engine(api, media_files):
    """The report: 1 MB of charset stored with a Tesseract record."""
    error = assert_error(ocr(api, engine="tesseract", charset="x" * MB), 400, "invalid_charset")
    assert error["fields"] == {"charset": ["charset is longer than 500 characters."]}
    assert nothing_stored(media_files)


@pytest.mark.parametrize(
    ("fields", "engine", "task"),
    [
        ({"engine": "auto", "task": "text", "charset": "0"}, "ddddocr", "text"),  # auto chose ddddocr
        ({"engine": "ddddocr", "charset": "0"}, "ddddocr", "text"),  # ddddocr's first task is text
        ({"engine": "tesseract", "rotate": False, "charset": ""}, "tesseract", "document"),  # defaults
    ],
    ids=["auto-text", "ddddocr-default-task", "defaults-sent"],
)
def test_options_where_they_apply_still_work(api, fields, engine, task):
    response = ocr(api, CAPTCHA if engine == "ddddocr" else PNG, **fields)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["engine"], body["task"]) == (engine, task)
    if fields["charset"]:
        assert set(body["text"]) <= set("0123456789")


def test_the_market_configure_is_held_to_the_same_rule(user, media_files):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"APPCODE {services.create_api_key(owner=user, name='m')[1]}")
    body = {"image": b64(PNG), "configure": {"engine": "tesseract", "charset": "abc"}}
    response = client.post("/api/ocr/", body, format="json")
    error = assert_error(response, 400, "unsupported_option")
    assert response["X-Ca-Error-Message"] == error["message"]
    assert nothing_stored(media_files)


# --- item 9: every text field a client sends is bounded -------------------------------

REQUEST_SERIALIZERS = [
    api_serializers.RegisterSerializer,
    api_serializers.TokenObtainRequestSerializer,
    api_serializers.TokenRefreshRequestSerializer,
    api_serializers.TokenLogoutSerializer,
    api_serializers.PasswordChangeSerializer,
    api_serializers.OcrRequestSerializer,
    api_serializers.BatchRequestSerializer,
    api_serializers.SlideRequestSerializer,
    api_serializers.ApiKeyCreateSerializer,
]


@pytest.mark.parametrize("serializer", REQUEST_SERIALIZERS, ids=lambda s: s.__name__)
def test_every_text_field_of_a_request_has_a_bound(serializer):
    """A base64 image is bounded by the body's limit (middleware) and the decoded size."""
    fields = serializer().fields
    unbounded = [
        name
        for name, field in fields.items()
        if isinstance(field, serializers.CharField)
        and not field.read_only
        and not isinstance(field, api_serializers.Base64Field)
        and field.max_length is None
        and api_serializers.bounded_charset not in field.validators
    ]
    assert unbounded == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/register/", {"username": "bob", "password": "p" * 4097}, "password"),
        ("/api/register/", {"username": "bob", "email": "a" * 250 + "@b.io", "password": "x"}, "email"),
        ("/api/token_obtain_pair/", {"username": "bob", "password": "p" * 4097}, "password"),
        ("/api/token_obtain_pair/", {"username": "b" * 151, "password": "p"}, "username"),
        ("/api/token_refresh/", {"refresh": "r" * 8193}, "refresh"),
    ],
    ids=["register-password", "register-email", "token-password", "token-username", "refresh"],
)
def test_an_overlong_credential_is_a_400(db, path, body, field):
    error = assert_error(APIClient().post(path, body, format="json"), 400, "max_length")
    assert list(error["fields"]) == [field]


# --- item 7: a batch is all or nothing ----------------------------------------------


def batch(client: APIClient, images: dict[str, bytes] | None = None, archive: bytes | None = None):
    payload: dict = {"engine": "tesseract"}
    if images:
        payload["images"] = [SimpleUploadedFile(name, data) for name, data in images.items()]
    if archive is not None:
        payload["archive"] = SimpleUploadedFile("scans.zip", archive, "application/zip")
    return client.post("/api/ocr/batch/", payload, format="multipart")


@pytest.mark.parametrize(
    ("bad_name", "bad", "status", "code"),
    [
        ("claims.pdf", EMPTY_TREE_PDF, 400, "invalid_pdf"),
        ("broken.png", PNG[: len(PNG) // 2], 400, "invalid_image"),
        ("huge.png", encode(Image.new("L", (400, 400), 255)), 413, "image_too_large"),
    ],
    ids=["empty-page-tree-pdf", "truncated-png", "too-many-pixels"],
)
@pytest.mark.parametrize("how", ["loose", "zipped"])
def test_one_bad_member_refuses_the_whole_batch(api, settings, media_files, bad_name, bad, status, code, how):
    settings.OCR_MAX_PIXELS = 150_000  # huge.png has 160,000; the others fewer
    members = {"good.png": PNG, bad_name: bad, "other.png": encode(render(["other"]))}
    response = batch(api, images=members) if how == "loose" else batch(api, archive=zip_of(members))
    error = assert_error(response, status, code)
    assert error["message"].startswith(f"{bad_name}: ")
    assert error["file_name"] == bad_name
    assert [(r["file_name"], r["error"]["code"]) for r in error["rejected"]] == [(bad_name, code)]
    assert nothing_stored(media_files)


def test_every_bad_member_is_listed(api, media_files):
    members = {"a.png": PNG, "b.pdf": EMPTY_TREE_PDF, "c.png": b"not an image"}
    error = assert_error(batch(api, images=members), 400, "invalid_pdf")
    assert [(r["file_name"], r["error"]["code"]) for r in error["rejected"]] == [
        ("b.pdf", "invalid_pdf"),
        ("c.png", "invalid_image"),
    ]
    assert nothing_stored(media_files)


def test_a_write_failing_midway_takes_back_the_rows_and_files_already_written(api, monkeypatch, media_files):
    """The fault: the database goes away as the second record is saved."""
    from django.db import OperationalError

    saves = []
    original = OcrRecord.save

    def failing_second(self, *args, **kwargs):
        saves.append(self.file_name)
        if len(saves) == 2:
            raise OperationalError("server closed the connection unexpectedly")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(OcrRecord, "save", failing_second)
    members = {"a.png": PNG, "b.png": encode(render(["second"])), "c.png": encode(render(["third"]))}
    assert_error(batch(api, images=members), 503, "database_unavailable")
    assert saves == ["a.png", "b.png"]
    assert nothing_stored(media_files)


@pytest.mark.django_db(transaction=True)
def test_a_job_failing_to_start_after_the_commit_keeps_the_committed_files(monkeypatch):
    """The rows are committed before the jobs are sent; a send that fails then (the broker
    down on the second) must not take the files of committed rows with it."""
    from app import tasks

    owner, sent = UserFactory(), []
    real_delay = tasks.recognize_record.delay

    def broker_down_on_the_second(record_id):
        sent.append(record_id)
        if len(sent) == 2:
            raise ConnectionError("Error 111 connecting to the broker")
        return real_delay(record_id)

    monkeypatch.setattr(tasks.recognize_record, "delay", broker_down_on_the_second)
    with pytest.raises(ConnectionError):
        services.create_batch(owner=owner, files=[(PNG, "a.png"), (encode(render(["bee"])), "b.png")])
    records = list(OcrRecord.objects.filter(owner=owner).order_by("pk"))
    assert [r.file_name for r in records] == ["a.png", "b.png"]
    assert all(r.image.storage.exists(r.image.name) for r in records)
    for record in records:
        record.image.delete(save=False)


def test_a_good_batch_still_queues_one_record_each(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = batch(api, images={"a.png": PNG}, archive=zip_of({"b.png": encode(render(["bee"]))}))
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["total"], body["queued"]) == (2, 2)  # as answered: the jobs start on commit
    assert "rejected" not in body
    summary = api.get(f"/api/batches/{body['id']}/").json()
    assert (summary["done"], summary["progress"]) == (2, 1.0)
    assert sorted(r["file_name"] for r in summary["records"]) == ["a.png", "b.png"]


# --- item 10: a zip is inflated within bounded memory ---------------------------------


def deflated_zip(names: list[str], data: bytes) -> bytes:
    """A ZIP_DEFLATED archive of `data` under every name, deflated once: zipfile would deflate
    the same 10 MB a hundred times (10 s). Same headers as zipfile writes."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)  # raw deflate, as in a zip
    deflated, crc = packer.compress(data) + packer.flush(), zlib.crc32(data)
    out, central = bytearray(), bytearray()
    for name in names:
        encoded, offset = name.encode(), len(out)
        sizes = (crc, len(deflated), len(data), len(encoded))
        out += struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0, *sizes, 0) + encoded + deflated
        entry = struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, *sizes, 0, 0, 0, 0, 0, offset)
        central += entry + encoded
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(names), len(names), len(central), len(out), 0)
    return bytes(out + central + end)


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """The report's archive: about 1 MB holding 100 members of 10 MB of zeros each."""
    archive = deflated_zip([f"{i:03}.png" for i in range(100)], bytes(10 * MB))
    infos = zipfile.ZipFile(io.BytesIO(archive)).infolist()
    assert [(i.compress_type, i.file_size) for i in infos] == [(zipfile.ZIP_DEFLATED, 10 * MB)] * 100
    return archive


def lying(archive: bytes, declared: int) -> bytes:
    """The archive with every member's uncompressed size rewritten to `declared`, in the
    central directory and the local headers alike: a member that lies about its size."""
    data = bytearray(archive)
    for signature, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        at = data.find(signature)
        while at != -1:
            struct.pack_into("<I", data, at + offset, declared)
            at = data.find(signature, at + 4)
    return bytes(data)


@contextmanager
def peak_traced() -> Iterator[list[int]]:
    """What Python allocated at the most inside the block (zlib's output and every copy of
    it are Python bytes), appended to the list on the way out."""
    peak: list[int] = []
    tracemalloc.start()
    try:
        yield peak
        peak.append(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


def test_a_zip_bomb_is_refused_from_its_declared_sizes_in_bounded_memory(api, zip_bomb, media_files):
    assert len(zip_bomb) < 2 * MB
    with peak_traced() as peak:
        response = batch(api, archive=zip_bomb)
    error = assert_error(response, 413, "archive_too_large")
    assert error["message"].startswith("The archive's files inflate to 1048576000 bytes; the limit is ")
    assert peak[0] < 100 * MB, f"peak {peak[0] / MB:.0f} MB"
    assert nothing_stored(media_files)


def test_a_member_lying_about_its_size_is_stopped_at_its_declared_size(zip_bomb):
    """Each member says 1000 bytes and inflates to 10 MB: reading stops at 1000 (the CRC
    then fails), never holding the 1 GB."""
    upload = SimpleUploadedFile("bomb.zip", lying(zip_bomb, 1000))
    with peak_traced() as peak, pytest.raises(OcrError) as caught:
        inputs.read_archive(upload)
    assert (caught.value.status, caught.value.code) == (400, "invalid_archive")
    assert peak[0] < 100 * MB, f"peak {peak[0] / MB:.0f} MB"


def test_members_each_under_the_limit_but_too_many_bytes_together_are_refused(settings):
    settings.OCR_MAX_UPLOAD_BYTES, settings.OCR_MAX_REQUEST_BYTES = 1000, 2500
    upload = SimpleUploadedFile("a.zip", zip_of({f"{i}.png": bytes(900) for i in range(3)}))
    with pytest.raises(OcrError) as caught:
        inputs.read_archive(upload)
    assert (caught.value.status, caught.value.code) == (413, "archive_too_large")
    assert caught.value.message == "The archive's files inflate to 2700 bytes; the limit is 2500."


def test_an_archive_within_the_limits_is_read_whole(settings):
    settings.OCR_MAX_UPLOAD_BYTES, settings.OCR_MAX_REQUEST_BYTES = 1000, 2700
    upload = SimpleUploadedFile("a.zip", zip_of({f"d/{i}.png": bytes([i]) * 900 for i in range(3)}))
    assert inputs.read_archive(upload) == [(bytes([i]) * 900, f"{i}.png") for i in range(3)]
