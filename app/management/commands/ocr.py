"""`manage.py ocr PATH…`: read images and PDFs on disk through the same service as POST /api/ocr/.

Every file goes through app.services.recognize (validation, limits, engines, storage), so
the command accepts and refuses exactly what the API does. This module only finds the files,
reads their bytes and prints what comes back.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from tqdm import tqdm

from app import services
from app.engines import registry
from app.engines.base import PDF_TEXT_SOURCES
from app.errors import InvalidInput, OcrError, TooLarge

# The suffixes of the formats app/images.py and app/pdf.py read (images.ALLOWED_FORMATS, PDF).
EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".ico", ".pdf")
# Nothing was read: a missing path, an unknown user, or options no engine accepts. Like argparse.
USAGE_ERROR = 2
# Task-specific output the API also returns beside the lines (app/api/serializers.py).
EXTRA_FIELDS = ("result", "boxes", "barcodes", "idcard", "pages")


class HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the description's paragraphs kept as written."""


class Command(BaseCommand):
    help = f"""Read the text of images and PDFs on disk, through the same code as POST /api/ocr/
(validation, limits, engines, storage).

PATHs are files and folders. Folders are walked recursively in name order; hidden files and
folders (names starting with ".") are skipped, and only files with these extensions (in any
case) are read: {" ".join(EXTENSIONS)}.
A file named on the command line is read whatever its name.

With --user, each upload and its record go into that user's history, exactly as through the
API; a file that user already had read the same way gives back that record ("cached": true)
unless --force. Without --user nothing is stored (no row, no file) and "id" is null.

stdout: the text of each file, preceded by "==> PATH <==" when there are several; with --json
one JSON object per file and line: path, id, engine, lang, task, status, cached, text, lines,
duration_ms (and result, boxes, barcodes, idcard, pages when the task gives them), or
{{"path", "error": {{"code", "message"}}}}. A file that cannot be read is reported (stderr, or
its JSON line) and the next file is read. stderr: a progress bar (only on a terminal) and a
summary line (-v 0: neither).

Exit status: 0 when every file was read, 1 when any failed, 2 when nothing was run (a missing
path, an unknown user, or an --engine/--lang/--task no engine accepts)."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("formatter_class", HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "paths", nargs="+", metavar="PATH", help="Image or PDF files, or folders of them."
        )
        parser.add_argument(
            "--engine",
            default="",
            help=f"{', '.join(registry.names())} (default: OCR_DEFAULT_ENGINE, itself auto).",
        )
        parser.add_argument(
            "--lang", default="", help="Tesseract codes joined by +, e.g. eng, chi_sim, eng+chi_sim."
        )
        parser.add_argument(
            "--task",
            default="",
            help="document; RapidOCR: idcard, line; ddddocr: text, math, detect; zxing: barcode "
            "(default: the engine's first).",
        )
        parser.add_argument(
            "--pdf-text",
            default="auto",
            choices=PDF_TEXT_SOURCES,
            help="A PDF page's own text layer: auto (where usable), layer (only), ocr (never).",
        )
        parser.add_argument(
            "--user", metavar="USERNAME", help="Store uploads and records in this user's history."
        )
        parser.add_argument(
            "--force", action="store_true", help="With --user: read again files the user had read before."
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object per file (JSON Lines)."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar, even on a terminal.")

    def handle(self, *args: Any, **options: Any) -> None:
        files = collect(options["paths"])
        owner = find_user(options["user"]) if options["user"] else None
        choice = {
            "engine": options["engine"],
            "lang": options["lang"],
            "task": options["task"],
            "pdf_text": options["pdf_text"],
        }
        check_options(**choice)
        force = options["force"]

        err = options.get("stderr") or sys.stderr
        quiet = options["verbosity"] == 0
        if not files:
            self.stderr.write(
                f"No image or PDF files in {', '.join(options['paths'])}.", style_func=self.style.WARNING
            )
        started, failed, printed = time.perf_counter(), 0, False
        progress = not (options["no_progress"] or quiet) and isatty(err)
        # Redrawn after every file (mininterval=0): a file takes far longer than a redraw, and a
        # quick file (tesserocr reads a small image in ms) must still show its count.
        bar_options = {"unit": "file", "file": err, "disable": not progress, "leave": False, "mininterval": 0}
        with tqdm(total=len(files), **bar_options) as bar:
            for path in files:
                bar.set_postfix_str(path.name)
                try:
                    done = read(path, owner=owner, force=force, **choice)
                    record = done.record
                except OcrError as exc:
                    failed += 1
                    self._report_error(bar, path, exc.code, exc.message, exc.extra, as_json=options["json"])
                except Exception as exc:
                    if options["traceback"]:
                        raise
                    failed += 1
                    message = f"{type(exc).__name__}: {exc}"
                    self._report_error(bar, path, "internal_error", message, {}, as_json=options["json"])
                else:
                    if options["json"]:
                        self._write(bar, self.stdout, json.dumps(record_json(path, done), ensure_ascii=False))
                    elif done.unfinished:  # OCR_ASYNC and a long PDF: no text yet
                        self._write(
                            bar, self.stderr, f"{path}: queued as record {record.pk}", self.style.NOTICE
                        )
                    else:  # like `tail`: with several files, a header each and a blank line between
                        gap = "\n" if printed else ""
                        header = f"{gap}==> {path} <==\n" if len(files) > 1 else ""
                        self._write(bar, self.stdout, header + record.text)
                        printed = True
                bar.update()

        seconds = time.perf_counter() - started
        if not quiet:
            summary = (
                f"{len(files)} file{'' if len(files) == 1 else 's'}, {len(files) - failed} ok, "
                f"{failed} failed, {seconds:.2f} s"
            )
            self.stderr.write(summary, style_func=self.style.WARNING if failed else self.style.SUCCESS)
        if failed:
            raise CommandError(f"{failed} of {len(files)} files failed.", returncode=1)

    def _report_error(
        self, bar: tqdm, path: Path, code: str, message: str, extra: dict[str, Any], *, as_json: bool
    ) -> None:
        if as_json:
            body = {"path": str(path), "error": {"code": code, "message": message, **extra}}
            self._write(bar, self.stdout, json.dumps(body, ensure_ascii=False))
        else:
            self._write(bar, self.stderr, f"{path}: {message} [{code}]")

    @staticmethod
    def _write(bar: tqdm, stream: Any, text: str, style_func: Any = None) -> None:
        """Write a line without tearing the progress bar, and flush it (JSON Lines stream out)."""
        bar.clear()
        stream.write(text, style_func=style_func)
        stream.flush()
        bar.refresh()


def collect(paths: list[str]) -> list[Path]:
    """The files to read: named files as they are, folders walked; each file once, in order."""
    missing = [path for path in paths if not os.path.exists(path)]
    if missing:
        raise CommandError(f"No such file or folder: {', '.join(missing)}", returncode=USAGE_ERROR)
    files: list[Path] = []
    for arg in paths:
        root = Path(arg)
        if root.is_dir():
            files += walk(root)
        elif root.is_file():
            files.append(root)
        else:
            raise CommandError(f"Not a file or folder: {arg}", returncode=USAGE_ERROR)
    seen: set[str] = set()
    unique = []
    for path in files:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            unique.append(path)
    return unique


def walk(root: Path) -> list[Path]:
    """Image and PDF files under a folder, by name; hidden names below it are skipped."""
    found = []
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        found += [
            Path(folder, name)
            for name in filenames
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in EXTENSIONS
        ]
    return sorted(found, key=lambda path: path.relative_to(root).parts)


def find_user(username: str) -> AbstractBaseUser:
    user_model = get_user_model()
    try:
        return user_model.objects.get(**{user_model.USERNAME_FIELD: username})
    except user_model.DoesNotExist:
        raise CommandError(f"No user named '{username}'.", returncode=USAGE_ERROR) from None


def check_options(*, engine: str, lang: str, task: str, pdf_text: str) -> None:
    """Refuse up front what every file would be refused for: an unknown or unavailable engine,
    a language or task it does not do. The same check services.recognize runs for each file."""
    try:
        registry.select(engine=engine, lang=lang, task=task, pdf_text=pdf_text)
    except OcrError as exc:
        raise CommandError(f"{exc.message} [{exc.code}]", returncode=USAGE_ERROR) from None


def read(
    path: Path,
    *,
    owner: AbstractBaseUser | None,
    force: bool,
    engine: str,
    lang: str,
    task: str,
    pdf_text: str,
) -> services.Recognition:
    limit = settings.OCR_MAX_UPLOAD_BYTES
    try:
        size = path.stat().st_size
        # The service checks the size too; this keeps a huge file from being read into memory first.
        if size > limit:
            raise TooLarge(f"The image is {size} bytes; the limit is {limit} bytes.", code="file_too_large")
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"Cannot read the file: {exc.strerror or exc}.", code="unreadable_file") from exc
    return services.recognize(
        owner=owner,
        data=data,
        file_name=path.name,
        engine=engine,
        lang=lang,
        task=task,
        pdf_text=pdf_text,
        force=force,
    )


def record_json(path: Path, done: services.Recognition) -> dict[str, Any]:
    record = done.record
    body = {
        "path": str(path),
        "id": record.pk,
        "engine": record.engine,
        "lang": record.lang,
        "task": record.task,
        "status": record.status,
        "cached": done.reused,
        "text": record.text,
        "lines": record.lines,
        "duration_ms": record.duration_ms,
    }
    body.update({key: record.extra[key] for key in EXTRA_FIELDS if key in record.extra})
    return body


def isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
