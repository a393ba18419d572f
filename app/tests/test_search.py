"""GET /api/history/?search=: full-text on PostgreSQL, contains on SQLite (app/selectors.py).

The CI runs the suite on both databases; the full-text tests need PostgreSQL and say so.
"""

import random
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from app import search, selectors
from app.models import OcrRecord

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="full-text search (tsvector, GIN, ts_rank) is PostgreSQL only; SQLite uses contains",
)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def found(api, search: str, **params) -> list[int]:
    return ids(api.get("/api/history/", {"search": search, **params}))


@pytest.fixture
def make(user, record_factory):
    """A record of `user`, each one newer than the last, with a tiny image (not the text
    rendered: some texts here are long)."""
    start = timezone.now() - timedelta(days=1)
    made = []

    def make_record(text: str = "", file_name: str = "a.png", owner=None, **fields) -> OcrRecord:
        made.append(None)
        return record_factory(
            owner=owner or user,
            text=text,
            file_name=file_name,
            image=ContentFile(b"x", name="x.png"),
            created_at=start + timedelta(minutes=len(made)),
            **fields,
        )

    return make_record


# ---- PostgreSQL: full-text -------------------------------------------------------------


@postgres_only
def test_english_whole_words_case_insensitive_no_stemming_no_prefix(api, make):
    invoice = make("Invoice total 42.00")
    plural = make("three INVOICES paid")
    voice = make("voice mail")
    make("an invoicing system")
    assert found(api, "INVOICE") == [invoice.pk]  # neither "invoices" nor "invoicing"
    assert found(api, "invoices") == [plural.pk]  # no stemming either way
    assert found(api, "voice") == [voice.pk]  # a word is not found inside another
    assert found(api, "inv") == []  # nor by its beginning
    assert found(api, "42") == [invoice.pk]  # punctuation splits words: 42.00 -> 42, 00
    assert found(api, "42.00") == [invoice.pk]
    assert found(api, "total 42") == [invoice.pk]  # every word must match, in any order
    assert found(api, "42 total") == [invoice.pk]
    assert found(api, "total paid") == []


@postgres_only
def test_file_names_are_split_on_punctuation(api, make):
    named = make("nothing here", file_name="INVOICE-march_2024.png")
    make("nothing", file_name="b.png")
    for term in ("invoice", "march", "2024", "march_2024", "invoice-march", "INVOICE-march_2024.png"):
        assert found(api, term) == [named.pk], term


@postgres_only
def test_chinese_substrings_of_any_length(api, make):
    ocr = make("光学字符识别服务")
    other = make("服务器 字符集")
    assert found(api, "字符识别") == [ocr.pk]
    assert found(api, "学字符识") == [ocr.pk]
    assert found(api, "光学字符识别服务") == [ocr.pk]
    assert sorted(found(api, "字符")) == sorted([ocr.pk, other.pk])
    assert found(api, "识") == [ocr.pk]  # one character, inside a run
    assert found(api, "光") == [ocr.pk]  # at its start
    assert sorted(found(api, "务")) == sorted([ocr.pk, other.pk])  # at its end, and inside
    assert found(api, "集") == [other.pk]
    assert found(api, "字识") == []  # not contiguous
    assert found(api, "服务 字符集") == [other.pk]
    named = make("x", file_name="发票_2024.pdf")
    assert found(api, "票") == [named.pk]  # in the file name too
    assert found(api, "发票 2024") == [named.pk]


@postgres_only
def test_chinese_mixed_with_latin_letters_and_digits(api, make):
    mixed = make("OCR字符识别API，第3页")
    assert found(api, "OCR字符") == [mixed.pk]
    assert found(api, "ocr字") == [mixed.pk]
    assert found(api, "识别API") == [mixed.pk]
    assert found(api, "第3页") == [mixed.pk]
    assert found(api, "OCR识别") == []


@postgres_only
def test_most_relevant_first_file_name_then_more_matches(api, make):
    named = make("nothing to see", file_name="invoice.png")
    twice = make("invoice for the invoice", file_name="b.png")
    once = make("one invoice", file_name="c.png")  # the newest: relevance, not recency, wins
    assert found(api, "invoice") == [named.pk, twice.pk, once.pk]
    assert found(api, "invoice", ordering="-created_at") == [once.pk, twice.pk, named.pk]
    chinese_once = make("光学字符识别")
    chinese_twice = make("字符识别与字符识别")
    assert found(api, "字符识别")[:2] == [chinese_twice.pk, chinese_once.pk]


@postgres_only
def test_equal_relevance_is_newest_first(api, make):
    records = [make(f"payment number {i}") for i in range(3)]
    assert found(api, "payment") == [r.pk for r in reversed(records)]


@postgres_only
def test_other_users_records_never_match(api, make, other_user):
    mine = make("quarterly report 光学字符")
    make("quarterly report 光学字符", owner=other_user)
    make("quarterly", file_name="quarterly.png", owner=other_user)
    for term in ("quarterly", "光学", "quarterly 光学字符"):
        response = api.get("/api/history/", {"search": term})
        assert ids(response) == [mine.pk]
        assert response.json()["count"] == 1


@postgres_only
def test_search_with_filters_and_an_explicit_ordering(api, make):
    slow = make("payment due", engine="rapidocr", duration_ms=900)
    fast = make("payment payment received", engine="rapidocr", duration_ms=5)
    make("payment", engine="tesseract", duration_ms=50)
    failed = make("payment failed", engine="rapidocr", status=OcrRecord.Status.FAILED, duration_ms=70)
    make("no match", engine="rapidocr")
    assert found(api, "payment", engine="rapidocr") == [fast.pk, failed.pk, slow.pk]  # relevance
    assert found(api, "payment", engine="rapidocr", ordering="duration_ms") == [fast.pk, failed.pk, slow.pk]
    assert found(api, "payment", engine="rapidocr", ordering="-duration_ms") == [slow.pk, failed.pk, fast.pk]
    assert found(api, "payment", engine="rapidocr", status="done", ordering="-duration_ms") == [
        slow.pk,
        fast.pk,
    ]
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    assert found(api, "payment", created_after=since) == []
    # An ordering that is not allowed is ignored: relevance again, not newest first.
    assert found(api, "payment", engine="rapidocr", ordering="owner__password") == [
        fast.pk,
        failed.pk,
        slow.pk,
    ]


@postgres_only
def test_the_index_follows_updates(api, make):
    record = make("", status=OcrRecord.Status.QUEUED)
    assert found(api, "receipt") == []
    OcrRecord.objects.filter(pk=record.pk).update(text="Receipt 收据", status=OcrRecord.Status.DONE)
    assert found(api, "receipt") == [record.pk]
    assert found(api, "收据") == [record.pk]


@postgres_only
def test_a_very_long_text_is_stored_and_its_start_is_searchable(api, make):
    # Different CJK bigrams make the largest tsvectors; only the first 40,000 characters
    # are indexed, which keeps the vector under PostgreSQL's 1 MB limit. Positions stop at
    # 16,383, so past that many tokens a phrase (three CJK characters or more) is not found
    # any more, but a word or two CJK characters still are.
    rng = random.Random(7)
    text = "".join(chr(0x4E00 + rng.randrange(20000)) for _ in range(120_000))
    record = make(text)
    assert found(api, text[100:104]) == [record.pk]
    assert found(api, text[10_000:10_004]) == [record.pk]
    assert found(api, text[30_000:30_002]) == [record.pk]
    assert found(api, text[30_000:30_004]) == []
    assert found(api, text[60_000:60_002]) == []


@postgres_only
def test_the_typical_query_can_use_one_index_for_owner_and_words(user, make):
    """`owner_id = X AND search_vector @@ query` is one condition of the GIN index. (On a
    tiny table the planner rightly prefers the owner's btree indexes: they are dropped here,
    inside the test's transaction. bench/search.py shows the plans at a million rows.)"""
    make("invoice")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'app_ocrrecord' "
            "AND indexdef LIKE '%%btree (owner_id%%'"
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SET LOCAL enable_seqscan = off")
        with CaptureQueriesContext(connection) as queries:
            selectors.history_for(user=user, search="invoice")  # reads the matches' ids
        (window,) = queries.captured_queries
        cursor.execute(f"EXPLAIN {window['sql']}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Bitmap Index Scan on record_owner_search" in plan, plan
    assert "Index Cond: ((owner_id = " in plan, plan
    assert "(search_vector @@ '''invoice'''::tsquery)" in plan, plan


# ---- both databases ------------------------------------------------------------------------


def test_every_word_must_match_text_or_file_name(api, make, other_user):
    both = make("Invoice total 42.00", file_name="march.png")
    text_only = make("invoice", file_name="b.png")
    make("invoice", file_name="march.png", owner=other_user)
    assert sorted(found(api, "invoice")) == sorted([both.pk, text_only.pk])
    assert found(api, "invoice march") == [both.pk]
    assert found(api, "  INVOICE   total  ") == [both.pk]
    assert found(api, "nothing-like-this") == []


def test_an_empty_search_is_no_search(api, make):
    records = [make("a"), make("b")]
    assert found(api, "") == [r.pk for r in reversed(records)]
    assert found(api, "   ") == [r.pk for r in reversed(records)]


def test_punctuation_alone_is_looked_up_as_it_is(api, make):
    bang = make("Stop!!! now")
    make("stop now")
    assert found(api, "!!!") == [bang.pk]


def test_at_most_search_max_results_the_newest_or_the_first_in_the_ordering(api, make, monkeypatch):
    monkeypatch.setattr(search, "SEARCH_MAX_RESULTS", 3)
    records = [make(f"payment {i}", duration_ms=100 - i) for i in range(5)]
    response = api.get("/api/history/", {"search": "payment"}).json()
    assert response["count"] == 3
    assert sorted(item["id"] for item in response["results"]) == sorted(r.pk for r in records[2:])
    fastest = api.get("/api/history/", {"search": "payment", "ordering": "duration_ms"}).json()
    assert fastest["count"] == 3
    assert [item["id"] for item in fastest["results"]] == [r.pk for r in reversed(records[2:])]
    oldest = api.get("/api/history/", {"search": "payment", "ordering": "created_at"}).json()
    assert [item["id"] for item in oldest["results"]] == [r.pk for r in records[:3]]
    assert api.get("/api/history/").json()["count"] == 5  # the plain history is not bounded


def test_a_word_in_more_records_than_the_bound(api, user, other_user):
    start = timezone.now() - timedelta(days=30)
    fields = {"image": "x.png", "sha256": "0", "size": 1, "width": 1, "height": 1, "task": "document"}
    records = OcrRecord.objects.bulk_create(
        OcrRecord(
            owner=owner,
            file_name=f"{i}.png",
            text=f"common word {i}",
            created_at=start + timedelta(minutes=i),
            **fields,
        )
        for owner in (user, other_user)
        for i in range(search.SEARCH_MAX_RESULTS + 5)
    )
    mine = [record.pk for record in records if record.owner_id == user.pk]
    first = api.get("/api/history/", {"search": "common"}).json()
    assert first["count"] == search.SEARCH_MAX_RESULTS
    assert [item["id"] for item in first["results"]] == mine[::-1][:20]  # equally relevant: newest
    last_page = search.SEARCH_MAX_RESULTS // 20
    last = api.get("/api/history/", {"search": "common", "page": last_page}).json()
    assert [item["id"] for item in last["results"]] == mine[::-1][last_page * 20 - 20 : last_page * 20]
    assert last["next"] is None
    assert api.get("/api/history/", {"search": "common", "page": last_page + 1}).status_code == 404


def test_selector_searches_the_same_as_the_api(api, user, make):
    make("payment received")
    make("nothing")
    make("payment due")
    assert [r.pk for r in selectors.history_for(user=user, search="payment")] == found(api, "payment")


def test_schema_documents_search_and_ordering():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    parameters = {p["name"]: p for p in schema["paths"]["/api/history/"]["get"]["parameters"]}
    assert "most relevant first" in parameters["search"]["description"]
    assert parameters["search"]["schema"] == {"type": "string"}
    assert "duration_ms" in parameters["ordering"]["description"]
