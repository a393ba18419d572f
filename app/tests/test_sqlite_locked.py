"""The embedded default database unavailable: another process holds SQLite's write lock past
our busy timeout. Writes then answer 503 JSON and leave nothing behind, reads go on (WAL),
and the first request after the lock is released is served.

(test_faults.py cuts PostgreSQL off through a relay. A SQLite file cannot be made unreadable
here: the tests run as root, whom file permissions do not stop. A held lock is the outage an
embedded database really has.)
"""

import sqlite3

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from app.tests.captchas import captcha
from app.tests.imaging import encode
from app.tests.responses import assert_error

pytestmark = [
    pytest.mark.django_db(transaction=True),  # our writes must really meet the other lock
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's file lock"),
]

BUSY_MS = 300  # how long our connection waits for the lock (settings: 20 s)


@pytest.fixture
def lock_database():
    """Returns a function that takes SQLite's write lock from a second connection, as another
    process would; the lock is released and our busy timeout restored after the test."""
    connection.ensure_connection()
    ours = connection.connection
    (restore,) = ours.execute("PRAGMA busy_timeout").fetchone()
    ours.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)

    def lock() -> sqlite3.Connection:
        holder.execute("BEGIN EXCLUSIVE")
        return holder

    yield lock
    if holder.in_transaction:
        holder.rollback()
    holder.close()
    ours.execute(f"PRAGMA busy_timeout = {restore}")


def upload(api, seed: int):
    image = SimpleUploadedFile("c.png", encode(captcha("k7Qm", seed=seed)), content_type="image/png")
    return api.post("/api/ocr/?force=true", {"image": image, "engine": "ddddocr"}, format="multipart")


def assert_database_unavailable(response) -> None:
    assert_error(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == "5"


def test_an_upload_while_locked_answers_503_keeps_no_file_and_succeeds_once_released(
    api, lock_database, media_files
):
    before = upload(api, seed=1)
    assert before.status_code == 201, before.content
    files = media_files()
    holder = lock_database()

    assert_database_unavailable(upload(api, seed=2))
    assert media_files() == files  # the file written before the row failed was taken back
    history = api.get("/api/history/")  # reads are not blocked by a writer under WAL
    assert history.status_code == 200
    assert [row["id"] for row in history.json()["results"]] == [before.json()["id"]]

    holder.rollback()
    after = upload(api, seed=2)
    assert after.status_code == 201, after.content
    assert after.json()["status"] == "done"
    assert len(media_files()) == len(files) + 1


def test_a_delete_while_locked_answers_503_and_keeps_the_record_and_its_file(api, lock_database, media_files):
    record = upload(api, seed=3).json()
    files = media_files()
    holder = lock_database()

    assert_database_unavailable(api.delete(f"/api/history/{record['id']}/"))
    assert media_files() == files
    assert api.get(f"/api/history/{record['id']}/").status_code == 200

    holder.rollback()
    assert api.delete(f"/api/history/{record['id']}/").status_code == 204
    assert media_files() == set()
