"""`manage.py ocr`: files and folders read through app.services.recognize, from tests and the CLI."""

import io
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from app import services
from app.engines import registry
from app.errors import EngineFailed
from app.models import OcrRecord
from app.tests.imaging import cer, encode, english_lines, render
from app.tests.pdfs import text_lines_pdf

ROOT = Path(__file__).resolve().parents[2]
FIRST, SECOND = english_lines(2, seed=11), english_lines(2, seed=12)
TESSERACT = ("--engine", "tesseract", "--lang", "eng")


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    error: str  # the CommandError's message, "" when none was raised

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout.splitlines()]


class TtyStringIO(io.StringIO):
    """A stream that says it is a terminal, so the progress bar draws into it."""

    def isatty(self) -> bool:
        return True


def ocr(*args: object, stderr: io.StringIO | None = None) -> Run:
    """call_command; a CommandError's returncode is what `manage.py ocr` exits with."""
    out, err = io.StringIO(), stderr if stderr is not None else io.StringIO()
    try:
        call_command("ocr", *map(str, args), stdout=out, stderr=err)
    except CommandError as exc:
        return Run(exc.returncode, out.getvalue(), err.getvalue(), str(exc))
    return Run(0, out.getvalue(), err.getvalue(), "")


@pytest.fixture
def scans(tmp_path) -> Path:
    """Two English images (one in a nested folder), and what the walk must skip."""
    folder = tmp_path / "scans"
    (folder / "nested").mkdir(parents=True)
    (folder / ".cache").mkdir()
    (folder / "a.png").write_bytes(encode(render(FIRST)))
    (folder / "nested" / "b.jpg").write_bytes(encode(render(SECOND), "JPEG", quality=95))
    (folder / ".hidden.png").write_bytes(encode(render(["hidden file"])))
    (folder / ".cache" / "c.png").write_bytes(encode(render(["hidden folder"])))
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def recognize_calls(monkeypatch) -> list[dict]:
    """Every call the command makes to services.recognize (which still runs)."""
    calls, real = [], services.recognize

    def spy(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(services, "recognize", spy)
    return calls


def test_a_folder_is_read_into_the_users_history_as_json_lines(scans, user, media_files, recognize_calls):
    run = ocr(scans, "--user", user.username, "--json", *TESSERACT)

    assert run.code == 0, run.stderr
    lines = run.json_lines()
    assert [line["path"] for line in lines] == [str(scans / "a.png"), str(scans / "nested" / "b.jpg")]
    assert [call["file_name"] for call in recognize_calls] == ["a.png", "b.jpg"]  # nothing hidden, no .txt
    records = {record.pk: record for record in OcrRecord.objects.filter(owner=user)}
    assert sorted(records) == sorted(line["id"] for line in lines)
    for line, expected in zip(lines, (FIRST, SECOND), strict=True):
        record = records[line["id"]]
        assert record.file_name == Path(line["path"]).name
        assert record.status == line["status"] == "done"
        assert line["cached"] is False
        assert cer("\n".join(expected), record.text) <= 0.05, record.text
        assert line["text"] == record.text
        assert line["lines"] == record.lines
        assert len(record.lines) == 2
        assert (line["engine"], line["lang"], line["task"]) == ("tesseract", "eng", "document")
        assert line["duration_ms"] == record.duration_ms > 0
        assert Path(record.image.path).read_bytes() == Path(line["path"]).read_bytes()
    assert len(media_files()) == 2
    assert "2 files, 2 ok, 0 failed" in run.stderr


def test_plain_output_has_a_header_per_file_and_only_the_text_for_one(scans, user):
    run = ocr(scans, "--user", user.username, *TESSERACT)

    assert run.code == 0, run.stderr
    first, second = OcrRecord.objects.filter(owner=user).order_by("id")
    assert run.stdout == (
        f"==> {scans / 'a.png'} <==\n{first.text}\n\n==> {scans / 'nested' / 'b.jpg'} <==\n{second.text}\n"
    )

    single = ocr(scans / "a.png", *TESSERACT)
    assert single.code == 0
    assert single.stdout == f"{first.text}\n"
    assert "1 file, 1 ok, 0 failed" in single.stderr


def test_a_corrupt_image_is_reported_and_the_others_are_still_read(scans, user):
    (scans / "broken.png").write_bytes(encode(render(["cut short"]))[:60])

    run = ocr(scans, "--user", user.username, *TESSERACT)

    assert run.code == 1
    assert run.error == "1 of 3 files failed."
    assert f"{scans / 'broken.png'}: " in run.stderr
    assert "[invalid_image]" in run.stderr
    assert "3 files, 2 ok, 1 failed" in run.stderr
    assert run.stdout.count("==> ") == 2
    assert "broken.png" not in run.stdout
    assert sorted(OcrRecord.objects.filter(owner=user).values_list("file_name", flat=True)) == [
        "a.png",
        "b.jpg",
    ]

    as_json = ocr(scans, "--json", *TESSERACT)
    assert as_json.code == 1
    lines = as_json.json_lines()
    assert [line["path"] for line in lines] == [
        str(scans / name) for name in ("a.png", "broken.png", "nested/b.jpg")
    ]
    assert lines[1] == {
        "path": str(scans / "broken.png"),
        "error": {"code": "invalid_image", "message": lines[1]["error"]["message"]},
    }
    assert lines[1]["error"]["message"]
    assert lines[0]["status"] == lines[2]["status"] == "done"


def test_call_command_raises_command_error_with_exit_status_1_when_a_file_fails(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(CommandError) as excinfo:
        call_command("ocr", str(tmp_path), stdout=io.StringIO(), stderr=io.StringIO())
    assert excinfo.value.returncode == 1


def test_a_file_named_on_the_command_line_is_read_whatever_its_extension(scans):
    run = ocr(scans / "notes.txt", scans / "a.png", scans, *TESSERACT)  # a.png named twice: read once

    assert run.code == 1
    assert "notes.txt: The file is not an image this service can read. [invalid_image]" in run.stderr
    assert run.stdout.count(f"==> {scans / 'a.png'} <==") == 1
    assert "3 files, 2 ok, 1 failed" in run.stderr


def test_an_engine_failure_keeps_a_failed_record_and_reports_its_id(scans, user, monkeypatch):
    def crash(image, options):
        raise EngineFailed("Tesseract crashed.")

    monkeypatch.setattr(registry.ENGINES["tesseract"], "recognize", crash)

    run = ocr(scans, "--user", user.username, "--json", *TESSERACT)

    assert run.code == 1
    failed = OcrRecord.objects.filter(owner=user, status="failed").order_by("id")
    assert [line["error"] for line in run.json_lines()] == [
        {"code": "engine_failed", "message": "Tesseract crashed.", "record_id": record.pk}
        for record in failed
    ]
    assert "2 files, 0 ok, 2 failed" in run.stderr


def test_an_unknown_user_is_refused_before_anything_is_read(scans, db, recognize_calls):
    with pytest.raises(CommandError, match="No user named 'nobody'") as excinfo:
        call_command("ocr", str(scans), "--user", "nobody", stdout=io.StringIO(), stderr=io.StringIO())
    assert excinfo.value.returncode == 2
    assert recognize_calls == []


def test_a_missing_path_is_refused_before_anything_is_read(scans, tmp_path, db, recognize_calls):
    missing = tmp_path / "nowhere.png"
    with pytest.raises(CommandError, match=f"No such file or folder: {missing}") as excinfo:
        call_command("ocr", str(scans), str(missing), stdout=io.StringIO(), stderr=io.StringIO())
    assert excinfo.value.returncode == 2
    assert recognize_calls == []
    assert OcrRecord.objects.count() == 0


def test_without_a_user_nothing_is_stored(scans, record_factory, media_files):
    record_factory()
    before, files_before = OcrRecord.objects.count(), media_files()

    run = ocr(scans, "--json", *TESSERACT)

    assert run.code == 0, run.stderr
    assert [line["id"] for line in run.json_lines()] == [None, None]
    assert cer("\n".join(FIRST), run.json_lines()[0]["text"]) <= 0.05
    assert OcrRecord.objects.count() == before
    assert media_files() == files_before


def test_engine_lang_and_task_are_passed_through(scans, user, recognize_calls):
    run = ocr(scans / "a.png", "--engine", "rapidocr", "--lang", "eng", "--user", user.username, "--json")
    assert run.code == 0, run.stderr
    (line,) = run.json_lines()
    assert (line["engine"], line["lang"], line["task"]) == ("rapidocr", "eng", "document")
    assert OcrRecord.objects.get(pk=line["id"]).engine == "rapidocr"
    assert cer("\n".join(FIRST), line["text"]) <= 0.05

    run = ocr(scans / "a.png", "--task", "text", "--json")  # auto routes a captcha task to ddddocr
    assert run.code == 0, run.stderr
    (line,) = run.json_lines()
    assert (line["engine"], line["task"]) == ("ddddocr", "text")

    assert [(call["engine"], call["lang"], call["task"]) for call in recognize_calls] == [
        ("rapidocr", "eng", ""),
        ("", "", "text"),
    ]


def test_a_file_read_before_gives_back_its_record_unless_forced(scans, user):
    first = ocr(scans / "a.png", "--user", user.username, "--json", *TESSERACT).json_lines()
    again = ocr(scans / "a.png", "--user", user.username, "--json", *TESSERACT).json_lines()
    forced = ocr(scans / "a.png", "--user", user.username, "--json", "--force", *TESSERACT).json_lines()

    assert again[0]["id"] == first[0]["id"]
    assert again[0]["cached"] is True
    assert again[0]["text"] == first[0]["text"]
    assert forced[0]["id"] != first[0]["id"]
    assert forced[0]["cached"] is False
    assert OcrRecord.objects.filter(owner=user).count() == 2


@pytest.mark.parametrize(
    ("options", "code"),
    [
        (("--engine", "nope"), "unknown_engine"),
        (("--engine", "tesseract", "--task", "math"), "unsupported_task"),
        (("--engine", "rapidocr", "--lang", "deu"), "unsupported_language"),
    ],
)
def test_options_no_engine_accepts_are_refused_up_front(scans, user, recognize_calls, options, code):
    run = ocr(scans, "--user", user.username, *options)

    assert run.code == 2
    assert run.error.endswith(f"[{code}]")
    assert recognize_calls == []
    assert run.stdout == ""
    assert OcrRecord.objects.count() == 0


def test_a_pdf_gives_its_pages(tmp_path):
    buffer = io.BytesIO()
    render(FIRST).save(buffer, "PDF", resolution=100)
    (tmp_path / "letter.pdf").write_bytes(buffer.getvalue())

    run = ocr(tmp_path, "--json", *TESSERACT)

    assert run.code == 0, run.stderr
    (line,) = run.json_lines()
    assert [page["page"] for page in line["pages"]] == [1]
    assert cer("\n".join(FIRST), line["text"]) <= 0.05


def test_a_pdf_queued_by_ocr_async_is_reported_as_queued(tmp_path, user, settings):
    settings.OCR_ASYNC, settings.OCR_ASYNC_PDF_PAGES = True, 0
    buffer = io.BytesIO()
    render(FIRST).save(buffer, "PDF", resolution=100)
    (tmp_path / "letter.pdf").write_bytes(buffer.getvalue())

    plain = ocr(tmp_path / "letter.pdf", "--user", user.username, "--force", *TESSERACT)
    as_json = ocr(tmp_path / "letter.pdf", "--user", user.username, "--force", "--json", *TESSERACT)

    first, second = OcrRecord.objects.filter(owner=user).order_by("id")
    assert plain.code == 0
    assert plain.stdout == ""
    assert f"letter.pdf: queued as record {first.pk}" in plain.stderr
    assert as_json.code == 0
    (line,) = as_json.json_lines()
    assert (line["id"], line["status"], line["text"]) == (second.pk, "queued", "")


def test_an_empty_folder_reads_nothing_and_succeeds(tmp_path):
    run = ocr(tmp_path)
    assert run.code == 0
    assert "No image or PDF files in" in run.stderr
    assert "0 files, 0 ok, 0 failed" in run.stderr
    assert "0 files" not in ocr(tmp_path, "--verbosity", "0").stderr


def test_the_progress_bar_is_drawn_only_on_a_terminal(scans):
    on_terminal = ocr(scans / "a.png", *TESSERACT, stderr=TtyStringIO())
    assert "1/1" in on_terminal.stderr
    assert "\r" in on_terminal.stderr

    turned_off = ocr(scans / "a.png", *TESSERACT, "--no-progress", stderr=TtyStringIO())
    assert "\r" not in turned_off.stderr
    assert "1/1" not in turned_off.stderr

    piped = ocr(scans / "a.png", *TESSERACT)
    assert "\r" not in piped.stderr
    assert "1/1" not in piped.stderr
    assert piped.stdout == on_terminal.stdout == turned_off.stdout


def test_the_command_line_exit_status_and_storage(tmp_path, scans):
    """A real `manage.py ocr` process against its own migrated SQLite database."""
    database = tmp_path / "cli.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SECRET_KEY": "cli-test-" + "x" * 50,
        "DATABASE_URL": f"sqlite:///{database}",
        "DJANGO_MEDIA_ROOT": str(tmp_path / "cli-media"),
    }

    def manage(*args: object) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *map(str, args)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    assert manage("migrate", "--verbosity", "0").returncode == 0
    created = manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; get_user_model().objects.create_user('cli')",
    )
    assert created.returncode == 0, created.stderr

    ok = manage("ocr", scans, "--user", "cli", "--json", *TESSERACT)
    assert ok.returncode == 0, ok.stderr
    ids = [line["id"] for line in map(json.loads, ok.stdout.splitlines())]
    assert len(ids) == 2
    assert None not in ids
    assert "\r" not in ok.stderr  # stderr is a pipe: no progress bar
    assert ok.stderr.strip().splitlines()[-1].startswith("2 files, 2 ok, 0 failed, ")

    (scans / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    failed = manage("ocr", scans, "--user", "cli", *TESSERACT)
    assert failed.returncode == 1
    assert "broken.png: " in failed.stderr
    assert "3 files, 2 ok, 1 failed" in failed.stderr
    assert failed.stdout.count("==> ") == 2

    assert manage("ocr", tmp_path / "missing").returncode == 2
    assert manage("ocr", scans, "--user", "nobody").returncode == 2

    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT r.id FROM app_ocrrecord r JOIN auth_user u ON u.id = r.owner_id WHERE u.username = 'cli'"
        ).fetchall()
    assert {row[0] for row in rows} == set(ids)  # the second run reused the first run's records
    assert len(list((tmp_path / "cli-media").rglob("*.*"))) == 2


@pytest.mark.parametrize(("pdf_text", "source"), [("auto", "layer"), ("ocr", "ocr")])
def test_pdf_text_chooses_how_a_born_digital_pdf_is_read(tmp_path, user, pdf_text, source):
    path = tmp_path / "letter.pdf"
    path.write_bytes(text_lines_pdf(["Dear reader", "Kind regards"], size=28))
    run = ocr(path, "--user", user.username, "--json", "--pdf-text", pdf_text, *TESSERACT)
    assert run.code == 0, run.stderr
    (line,) = run.json_lines()
    record = OcrRecord.objects.get(pk=line["id"])
    assert [page["text_source"] for page in record.extra["pages"]] == [source]
    assert cer("Dear reader\nKind regards", record.text) <= 0.05
