"""History search: full-text on PostgreSQL (migration 0005_history_search), substrings on
SQLite. app.selectors.history (the API and the history page) calls search_history."""

from django.contrib.postgres.search import SearchQueryField, SearchRank, SearchVectorField
from django.db import connections
from django.db.models import BooleanField, Expression, F, Func, Q, QuerySet, Value
from django.db.models.expressions import RawSQL

from app.models import OcrRecord

# A search returns at most this many records: without an ordering, the newest matches,
# most relevant first; with one, the first in that order. The bound is what keeps a search
# for a word in nearly every record ("the", 的) as fast as one for a rare word: ranking and
# counting touch at most this many rows, not all the user's. Like GitHub's 1,000 results.
SEARCH_MAX_RESULTS = 1000
# A pasted page is not a search: past these, words are dropped (repeats first) and cut, which
# only widens the matches; SQLite refuses a query of thousands of LIKEs or a 50,000-char one.
SEARCH_MAX_WORDS = 32
SEARCH_MAX_WORD_LENGTH = 100


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
    words = list(dict.fromkeys(term.replace("\x00", "").split()))[:SEARCH_MAX_WORDS]
    words = [word[:SEARCH_MAX_WORD_LENGTH] for word in words]
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
