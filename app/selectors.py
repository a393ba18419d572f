"""Every read the service makes: history, one record, engine and health status."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.postgres.search import SearchQueryField, SearchRank, SearchVectorField
from django.db import connection, connections
from django.db.models import BooleanField, Expression, F, Func, Q, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.shortcuts import get_object_or_404

from app.engines import registry
from app.engines.base import Options
from app.models import ApiKey, Batch, OcrRecord


def history_for(*, user: AbstractBaseUser, search: str = "") -> QuerySet[OcrRecord]:
    """A user's own records, newest first. Every history read starts here.

    With `search`, the records that match it, most relevant first (search_history)."""
    records = OcrRecord.objects.filter(owner=user).order_by("-created_at", "-id")
    return search_history(records, search)


# A search returns at most this many records: without an ordering, the newest matches,
# most relevant first; with one, the first in that order. The bound is what keeps a search
# for a word in nearly every record ("the", 的) as fast as one for a rare word: ranking and
# counting touch at most this many rows, not all the user's. Like GitHub's 1,000 results.
SEARCH_MAX_RESULTS = 1000


def search_history(records: QuerySet[OcrRecord], term: str, *, ranked: bool = True) -> QuerySet[OcrRecord]:
    """The records of `records` whose recognized text or file name match `term`: the one
    implementation of history search, for the API and the pages. Filter `records` first.

    `ranked`: the newest SEARCH_MAX_RESULTS matches, most relevant first, then newest.
    Otherwise the first SEARCH_MAX_RESULTS matches in the order of `records` (e.g. the
    client's ?ordering=), ties by id in the same direction. count() is at most the bound.
    Not lazy: it reads which records those are (one query); pages are read when iterated.

    Every whitespace-separated word of `term` must match. On PostgreSQL that is full-text
    search over the generated `search_vector` column (migration 0005_history_search): whole
    words, case-insensitive, punctuation splitting words, no stemming and no prefixes
    ("invoice" does not find "invoices" nor "inv" "invoice"), any run of Chinese (CJK)
    characters found as a substring, ranked by ts_rank: a match in the file name above one
    in the text, more matches above fewer. Elsewhere (SQLite), each word is a
    case-insensitive substring of the text or the file name, and "relevant" is newest.
    """
    words = term.replace("\x00", "").split()
    if not words:
        return records
    if connections[records.db].vendor == "postgresql" and any(char.isalnum() for char in term):
        query = Func(Value(" ".join(words)), function="ocr_search_query", output_field=SearchQueryField())
        vector = _SearchVector()
        matches = records.filter(_Matches(vector, query))
        relevance = [SearchRank(vector, query).desc(), "-created_at", "-id"]
    else:  # not PostgreSQL, or only punctuation ("!!!"), which has no words to look up
        matches = records
        for word in words:
            matches = matches.filter(Q(text__icontains=word) | Q(file_name__icontains=word))
        relevance = ["-created_at", "-id"]
    ordering = ["-created_at", "-id"] if ranked else _with_id(records)
    # The window is read here, once (one query, at most SEARCH_MAX_RESULTS ids): the count
    # is its length and each page ranks only these rows, instead of every page and the
    # COUNT finding the matches again.
    window = list(matches.order_by(*ordering).values_list("pk", flat=True)[:SEARCH_MAX_RESULTS])
    if not window:
        return records.none()
    if connections[records.db].vendor == "postgresql":  # one array parameter, not 1,000
        window_ids = RawSQL("SELECT unnest(%s::bigint[])", (window,))
    else:
        window_ids = window
    found = records.filter(pk__in=window_ids).order_by(*(relevance if ranked else ordering))
    results = SearchResults(model=found.model, query=found.query, using=found.db)
    results.known_count = len(window)
    return results


class SearchResults(QuerySet):
    """What search_history returns: its count() (the paginator's) is the size of the
    window already read, without a query. Querysets made from it (filtered, re-ordered,
    sliced) count the usual way."""

    known_count: int | None = None

    def count(self) -> int:
        if self.known_count is None or self._result_cache is not None:
            return super().count()
        return self.known_count


def _with_id(records: QuerySet) -> list:
    """The order of `records`, ties broken by id in the direction of its first field, so
    that the window is well defined and an index on (owner, field, id) can serve it."""
    ordering = list(records.query.order_by or records.model._meta.ordering)
    if {"id", "-id", "pk", "-pk"} & {str(field) for field in ordering}:
        return ordering
    first = ordering[0] if ordering else "-id"
    descending = first.startswith("-") if isinstance(first, str) else getattr(first, "descending", False)
    return [*ordering, "-id" if descending else "id"]


class _SearchVector(Expression):
    """The PostgreSQL-only `search_vector` column of the record being read. Not a model field
    (SQLite has no tsvector); it follows the record's table alias, also inside subqueries."""

    output_field = SearchVectorField()

    def __init__(self, pk: Expression | None = None) -> None:
        super().__init__()
        self.pk = pk

    def get_source_expressions(self) -> list:
        return [self.pk]

    def set_source_expressions(self, exprs) -> None:
        (self.pk,) = exprs

    def resolve_expression(self, query=None, allow_joins=True, reuse=None, summarize=False, for_save=False):
        resolved = self.copy()
        resolved.pk = F("pk").resolve_expression(query, allow_joins, reuse, summarize, for_save)
        return resolved

    def as_sql(self, compiler, connection):
        table = compiler.quote_name_unless_alias(self.pk.alias)
        return f"{table}.{connection.ops.quote_name('search_vector')}", []


class _Matches(Func):
    """vector @@ query, usable in .filter()."""

    arg_joiner = " @@ "
    template = "(%(expressions)s)"
    output_field = BooleanField()


def record_for(*, user: AbstractBaseUser, pk: int) -> OcrRecord:
    """One of the user's records; another user's id is a 404, the same as a missing one."""
    return get_object_or_404(history_for(user=user), pk=pk)


def engine_statuses() -> list[dict[str, Any]]:
    statuses = []
    for engine in registry.ENGINES.values():
        available = engine.is_available()
        statuses.append(
            {
                "name": engine.name,
                "available": available,
                "reason": "" if available else engine.unavailable_reason(),
                "version": engine.version() if available else "",
                "languages": engine.languages(),
                "default_lang": engine.default_lang,
                "tasks": list(engine.tasks),
            }
        )
    return statuses


def health() -> dict[str, Any]:
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except Exception as exc:  # any driver error means the same thing here: no database
        database = f"error: {exc.__class__.__name__}"
    engines = {engine.name: engine.is_available() for engine in registry.ENGINES.values()}
    return {
        "status": "ok" if database == "ok" and any(engines.values()) else "error",
        "database": database,
        "engines": engines,
    }


def api_keys_for(*, user: AbstractBaseUser) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(owner=user).order_by("-created_at", "-id")


def active_api_key(*, key: str) -> ApiKey | None:
    """The unrevoked key with this value, with its owner; None for anything else."""
    return (
        ApiKey.objects.select_related("owner")
        .filter(key_hash=ApiKey.hash(key), revoked_at__isnull=True, owner__is_active=True)
        .first()
    )


def option_values(options: Options) -> dict[str, Any]:
    """The options besides engine, language and task that change what OCR returns."""
    return {"rotate": options.rotate, "charset": options.charset, "outputs": list(options.outputs)}


def earlier_result(
    *, owner: AbstractBaseUser, sha256: str, engine: str, options: Options
) -> OcrRecord | None:
    """The owner's latest record of these bytes read the same way, if it has not failed.

    Looked up by (owner, sha256), its own index: this runs before every upload, and the
    owner may have a hundred thousand records.
    """
    return (
        OcrRecord.objects.filter(
            owner=owner,
            sha256=sha256,
            engine=engine,
            lang=options.lang,
            task=options.task,
            options=option_values(options),
            status__in=[OcrRecord.Status.QUEUED, OcrRecord.Status.RUNNING, OcrRecord.Status.DONE],
        )
        .order_by("-id")
        .first()
    )


def batch_for(*, user: AbstractBaseUser, pk: int) -> Batch:
    return get_object_or_404(Batch.objects.filter(owner=user), pk=pk)


def batch_summary(*, batch: Batch) -> dict[str, Any]:
    records = list(batch.records.order_by("id"))
    counts = {status: 0 for status in OcrRecord.Status.values}
    for record in records:
        counts[record.status] += 1
    finished = counts[OcrRecord.Status.DONE] + counts[OcrRecord.Status.FAILED]
    return {
        "id": batch.pk,
        "created_at": batch.created_at,
        "total": len(records),
        **counts,
        "progress": round(finished / len(records), 4) if records else 1.0,
        "records": records,
    }
