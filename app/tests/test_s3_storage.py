"""OCR_STORAGE=s3 against a real S3-compatible server on loopback (moto's server, a subprocess).

The storage is switched the way production switches it: onlineocr/settings.py is run with the
OCR_S3_* variables and its STORAGES["default"] is put in place with the `settings` fixture
(Django then drops its cached default storage, which the model's FileField goes through).
Credentials are fake and exist only in this test's environment.

moto 5.2.5 checks that a GET carries a signature at all (an unsigned GET of a private object
is a 403) but not the signature's validity nor its expiry: a presigned URL keeps working on
moto after it has expired. The expiry test therefore checks what S3 itself enforces: the URL
is signed with our key, its X-Amz-Expires is OCR_S3_URL_SECONDS and is covered by the
signature (changing it breaks the signature), and the window has passed after the sleep.
"""

import os
import re
import runpy
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import boto3
import pytest
import requests
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError
from storages.backends.s3 import S3Storage

from app.models import OcrRecord
from app.tests.clients import client_for
from app.tests.factories import UserFactory
from app.tests.imaging import encode, english_lines, render
from app.tests.processes import moto_server

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_FILE = ROOT / "onlineocr" / "settings.py"
REGION = "us-east-1"
ACCESS_KEY, SECRET_KEY = "AKIAFAKEONLINEOCR", "fake-secret-for-moto-only"
PREFIX = "media/"
KEY_PATTERN = re.compile(r"^media/uploads/\d{4}/\d{2}/[0-9a-f]{32}\.png$")
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_S3_ACCESS_KEY_ID",
    "AWS_S3_SECRET_ACCESS_KEY",
    "AWS_S3_SESSION_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)


@pytest.fixture(scope="module")
def moto_endpoint():
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Fake credentials, and nothing of the developer's own AWS set-up."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def load_settings(monkeypatch, **variables: str) -> dict:
    """Run onlineocr/settings.py with these OCR_* variables (and no others) set."""
    for name in [n for n in os.environ if n.startswith("OCR_")]:
        monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


@pytest.fixture
def s3(moto_endpoint, aws_env, monkeypatch, settings):
    """A new private bucket, and uploads switched to it exactly as OCR_STORAGE=s3 would."""
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    bucket = f"onlineocr-test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    loaded = load_settings(
        monkeypatch,
        OCR_STORAGE="s3",
        OCR_S3_BUCKET=bucket,
        OCR_S3_ENDPOINT_URL=moto_endpoint,
        OCR_S3_REGION=REGION,
        OCR_S3_PREFIX=PREFIX,
        OCR_S3_ADDRESSING_STYLE="path",
    )
    settings.STORAGES = {**settings.STORAGES, "default": loaded["STORAGES"]["default"]}
    settings.OCR_STORAGE = loaded["OCR_STORAGE"]
    settings.OCR_S3_URL_SECONDS = loaded["OCR_S3_URL_SECONDS"]
    yield SimpleNamespace(client=client, bucket=bucket, endpoint=moto_endpoint)
    for key in keys_in(client, bucket):
        client.delete_object(Bucket=bucket, Key=key)
    client.delete_bucket(Bucket=bucket)


def keys_in(client, bucket: str) -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.fixture(scope="module")
def document_png() -> bytes:
    return encode(render(english_lines(2, seed=5)))


def object_bytes(s3, record: OcrRecord) -> bytes:
    return s3.client.get_object(Bucket=s3.bucket, Key=PREFIX + record.image.name)["Body"].read()


def presigned_location(response) -> tuple[str, dict[str, str]]:
    assert response.status_code == 302, response.content
    location = response["Location"]
    return location, dict(parse_qsl(urlsplit(location).query))


def signature_matches(url: str, secret: str) -> bool:
    """Recompute a SigV4 query signature as S3 does, with the signer's secret."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    # The raw pairs, not re-encoded: S3 signs the query exactly as it was sent.
    raw = "&".join(pair for pair in parts.query.split("&") if not pair.startswith("X-Amz-Signature="))
    unsigned = urlunsplit(parts._replace(query=raw))
    request = AWSRequest(method="GET", url=unsigned)
    request.context["timestamp"] = params["X-Amz-Date"]
    access_key, _date, region, service, _ = params["X-Amz-Credential"].split("/")
    expires = int(params["X-Amz-Expires"])
    auth = S3SigV4QueryAuth(Credentials(access_key, secret), service, region, expires=expires)
    string_to_sign = auth.string_to_sign(request, auth.canonical_request(request))
    return auth.signature(string_to_sign, request) == params["X-Amz-Signature"]


# ---- settings ------------------------------------------------------------------------


def test_settings_read_the_s3_variables_and_keep_secrets_out(monkeypatch, aws_env):
    loaded = load_settings(
        monkeypatch,
        OCR_STORAGE="s3",
        OCR_S3_BUCKET="ocr-uploads",
        OCR_S3_ENDPOINT_URL="http://minio.internal:9000",
        OCR_S3_REGION="eu-west-3",
        OCR_S3_PREFIX="/media/",
        OCR_S3_ADDRESSING_STYLE="path",
    )
    default = loaded["STORAGES"]["default"]
    assert default["BACKEND"] == "storages.backends.s3.S3Storage"
    assert default["OPTIONS"] == {
        "bucket_name": "ocr-uploads",
        "endpoint_url": "http://minio.internal:9000",
        "region_name": "eu-west-3",
        "location": "media",
        "addressing_style": "path",
        "signature_version": "s3v4",
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": 60,
        "custom_domain": None,
        "file_overwrite": False,
    }
    assert loaded["STORAGES"]["staticfiles"]["BACKEND"] == "whitenoise.storage.CompressedStaticFilesStorage"
    assert SECRET_KEY not in repr({k: v for k, v in loaded.items() if k.isupper()})
    # AWS itself: no endpoint, the region and addressing left to boto3.
    aws = load_settings(monkeypatch, OCR_STORAGE="s3", OCR_S3_BUCKET="b", OCR_S3_URL_SECONDS="30")
    options = aws["STORAGES"]["default"]["OPTIONS"]
    assert options["endpoint_url"] is options["region_name"] is options["addressing_style"] is None
    assert (options["location"], options["querystring_expire"]) == ("", 30)


def test_settings_default_to_local_files_and_refuse_half_configurations(monkeypatch):
    loaded = load_settings(monkeypatch)
    assert loaded["OCR_STORAGE"] == "local"
    assert loaded["STORAGES"]["default"] == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    with pytest.raises(ImproperlyConfigured, match="OCR_S3_BUCKET"):
        load_settings(monkeypatch, OCR_STORAGE="s3")
    with pytest.raises(ImproperlyConfigured, match="OCR_STORAGE"):
        load_settings(monkeypatch, OCR_STORAGE="ftp")
    with pytest.raises(ImproperlyConfigured, match="OCR_S3_URL_SECONDS"):
        load_settings(monkeypatch, OCR_STORAGE="s3", OCR_S3_BUCKET="b", OCR_S3_URL_SECONDS="0")


def test_the_image_field_follows_the_configured_storage(s3, db):
    field = OcrRecord._meta.get_field("image")
    assert field.storage is default_storage  # the lazy default, not a storage fixed at import
    assert isinstance(OcrRecord().image.storage, S3Storage)
    assert default_storage.bucket_name == s3.bucket


# ---- writing -------------------------------------------------------------------------


def test_an_upload_lands_in_the_bucket_privately_under_the_prefix(s3, api, document_png, media_files):
    upload = SimpleUploadedFile("my-secret-invoice.png", document_png, content_type="image/png")
    response = api.post("/api/ocr/", {"image": upload, "engine": "tesseract"}, format="multipart")
    assert response.status_code == 201, response.content
    record = OcrRecord.objects.get(pk=response.json()["id"])

    [key] = keys_in(s3.client, s3.bucket)
    assert key == PREFIX + record.image.name
    assert KEY_PATTERN.match(key), key  # a random name: the client's never reaches the bucket
    assert "secret" not in key
    stored = s3.client.get_object(Bucket=s3.bucket, Key=key)
    assert stored["Body"].read() == document_png
    assert stored["ContentType"] == "image/png"
    grants = s3.client.get_object_acl(Bucket=s3.bucket, Key=key)["Grants"]
    assert grants
    assert all(grant["Grantee"]["Type"] == "CanonicalUser" for grant in grants)  # no AllUsers group
    assert requests.get(f"{s3.endpoint}/{s3.bucket}/{key}", timeout=10).status_code == 403  # unsigned
    assert not media_files()  # nothing on this machine's disk

    # Reading a record's file back goes through the same storage.
    fresh = OcrRecord.objects.get(pk=record.pk)
    with fresh.image.open("rb") as handle:
        assert handle.read() == document_png


def test_a_database_failure_while_saving_leaves_no_object(s3, api, document_png, monkeypatch):
    written = []
    real_save = S3Storage._save

    def spying_save(self, name, content):
        written.append(real_save(self, name, content))
        return written[-1]

    def broken_save(self, *args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(S3Storage, "_save", spying_save)
    monkeypatch.setattr(OcrRecord, "save", broken_save)
    upload = SimpleUploadedFile("a.png", document_png, content_type="image/png")
    with pytest.raises(DatabaseError):
        api.post("/api/ocr/", {"image": upload, "engine": "tesseract"}, format="multipart")
    assert len(written) == 1  # the object was written first...
    assert keys_in(s3.client, s3.bucket) == []  # ...and taken back when the row failed
    assert not OcrRecord.objects.exists()


def test_deleting_a_record_removes_its_object_once_the_delete_commits(
    s3, api, user, record_factory, django_capture_on_commit_callbacks
):
    record = record_factory(owner=user)
    key = PREFIX + record.image.name
    assert keys_in(s3.client, s3.bucket) == [key]
    with django_capture_on_commit_callbacks() as callbacks:
        assert api.delete(f"/api/history/{record.pk}/").status_code == 204
    assert keys_in(s3.client, s3.bucket) == [key]  # not before the commit: a rollback keeps it
    for callback in callbacks:
        callback()
    assert keys_in(s3.client, s3.bucket) == []
    assert not OcrRecord.objects.filter(pk=record.pk).exists()


# ---- reading: owner-checked presigned redirects --------------------------------------


def test_the_owner_is_redirected_to_a_presigned_url_and_nobody_else_is(
    s3, api, user, other_user, anon, record_factory, monkeypatch
):
    record = record_factory(owner=user)
    expected = object_bytes(s3, record)

    def no_head(self, name):
        raise AssertionError("the image view must not spend a HEAD request on exists()")

    monkeypatch.setattr(S3Storage, "exists", no_head)
    response = api.get(f"/api/history/{record.pk}/image/")
    location, params = presigned_location(response)
    assert response["Cache-Control"] == "private, no-store"
    assert location.startswith(f"{s3.endpoint}/{s3.bucket}/{PREFIX}{record.image.name}?")
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-Expires"] == "60"
    assert params["X-Amz-Credential"].startswith(f"{ACCESS_KEY}/")
    assert signature_matches(location, SECRET_KEY)
    assert not signature_matches(location, "another-secret")

    fetched = requests.get(location, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == expected
    assert fetched.headers["Content-Type"] == "image/png"
    assert fetched.headers["Cache-Control"] == "private, max-age=60"

    assert client_for(other_user).get(f"/api/history/{record.pk}/image/").status_code == 404
    assert anon.get(f"/api/history/{record.pk}/image/").status_code == 401


def test_links_are_signed_for_the_public_address_browsers_reach(s3, api, user, record_factory, settings):
    """The app reaches the store by one name (compose's `s3`), browsers by another: the link
    names the public one and its signature holds for that host, which S3 checks."""
    record = record_factory(owner=user)
    public = s3.endpoint.replace("127.0.0.1", "localhost")
    settings.OCR_S3_PUBLIC_URL = public
    location, params = presigned_location(api.get(f"/api/history/{record.pk}/image/"))
    assert location.startswith(f"{public}/{s3.bucket}/{PREFIX}{record.image.name}?")
    assert params["X-Amz-Expires"] == "60"
    assert signature_matches(location, SECRET_KEY)
    # Signed for the public host: the same query sent to the app's own address does not verify.
    assert not signature_matches(location.replace(public, s3.endpoint), SECRET_KEY)
    assert requests.get(location, timeout=10).content == object_bytes(s3, record)


def test_the_admin_thumbnail_is_a_presigned_redirect_too(s3, client, record_factory):
    record = record_factory()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    location, _ = presigned_location(client.get(f"/admin/app/ocrrecord/{record.pk}/image/"))
    assert requests.get(location, timeout=10).content == object_bytes(s3, record)


def test_the_presigned_url_expires_after_ocr_s3_url_seconds(s3, api, user, record_factory, settings):
    settings.OCR_S3_URL_SECONDS = 1
    record = record_factory(owner=user)
    location, params = presigned_location(api.get(f"/api/history/{record.pk}/image/"))
    signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert params["X-Amz-Expires"] == "1"
    assert abs(datetime.now(UTC) - signed_at) < timedelta(seconds=5)
    assert signature_matches(location, SECRET_KEY)
    # The lifetime is part of what is signed: a client cannot stretch it.
    stretched = location.replace("X-Amz-Expires=1&", "X-Amz-Expires=3600&")
    assert stretched != location
    assert not signature_matches(stretched, SECRET_KEY)

    time.sleep(2)
    # S3 refuses a request after X-Amz-Date + X-Amz-Expires (moto does not check: see above).
    assert datetime.now(UTC) > signed_at + timedelta(seconds=int(params["X-Amz-Expires"]))
