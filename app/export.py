"""A history as a file: CSV for spreadsheets, JSON Lines for programs. One writer for the
API's `GET /api/history/export/` (the owner's own records) and the admin's CSV action (staff).

Rows are streamed from the database in chunks, so a long history never sits in memory.
"""

import csv
import json
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet

from app.models import OcrRecord

CSV_COLUMNS = [
    "id",
    "owner",
    "file_name",
    "engine",
    "lang",
    "task",
    "status",
    "text",
    "duration_ms",
    "created_at",
]
# A cell a spreadsheet would run as a formula (CSV injection) gets a leading apostrophe.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 500


def csv_lines(records: QuerySet[OcrRecord]) -> Iterator[str]:
    """The header, then one CSV line per record."""
    buffer = _Echo()
    writer = csv.writer(buffer)
    yield writer.writerow(CSV_COLUMNS)
    for record in _each(records):
        yield writer.writerow(
            [
                record.pk,
                _cell(record.owner.get_username() if record.owner else ""),
                _cell(record.file_name),
                record.engine,
                record.lang,
                record.task,
                record.status,
                _cell(record.text),
                record.duration_ms,
                record.created_at.isoformat(),
            ]
        )


def json_lines(records: QuerySet[OcrRecord]) -> Iterator[str]:
    """One JSON object per line and record, with its lines (text, box, confidence)."""
    for record in _each(records):
        row = {
            "id": record.pk,
            "file_name": record.file_name,
            "engine": record.engine,
            "lang": record.lang,
            "task": record.task,
            "status": record.status,
            "text": record.text,
            "lines": record.lines,
            "error": record.error,
            "width": record.width,
            "height": record.height,
            "duration_ms": record.duration_ms,
            "created_at": record.created_at.isoformat(),
        }
        for key in ("idcard", "barcodes"):  # task=idcard: the card's fields; barcode: the symbols
            if key in record.extra:
                row[key] = record.extra[key]
        yield json.dumps(row, ensure_ascii=False) + "\n"


def _each(records: QuerySet[OcrRecord]) -> Iterable[OcrRecord]:
    return records.select_related("owner").iterator(chunk_size=CHUNK)


def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_START) else value


class _Echo:
    """csv.writer writes into this and gets the line back, to stream it (Django's recipe)."""

    def write(self, value: str) -> str:
        return value
