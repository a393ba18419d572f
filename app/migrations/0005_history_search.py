"""Full-text search for the history, on PostgreSQL only (see app/search.py).

PostgreSQL gets a stored, generated `search_vector` column on app_ocrrecord, a GIN index
on (owner_id, search_vector), and two SQL functions that turn a record and a search term
into the same tokens, so that the two always agree:

- `ocr_search_document(file_name, text)` -> tsvector: the file name (weight A) and the
  first 40,000 characters of the text (weight B). The 'simple' configuration: lower case,
  no stemming, no stop words (mixed languages, file names, codes). Punctuation splits words
  ("INVOICE-march.png" -> invoice, march, png; "42.00" -> 42, 00). PostgreSQL's parser does
  not split Chinese (or Japanese) into words, so each run of CJK characters becomes its
  first character, its overlapping bigrams and its last character (光学字符 -> 光 光学 学字
  字符 符), and every CJK character is also there once, without a position.
- `ocr_search_query(term)` -> tsquery: every whitespace-separated word of the term must
  match, as a whole word: the phrase of its tokens, made the same way ("march.png" ->
  march <-> png). Inside it a CJK run is the phrase of its bigrams, so any substring of
  two or more CJK characters is found (字符识别 -> 字符 <-> 符识 <-> 识别), and a lone
  character is that character. No stemming and no prefixes: "invoice" does not find
  "invoices" nor "inv" "invoice" (a prefix would scan every user's words that start so).
  Positions stop at 16,383: in a longer text, phrases (three CJK characters or more,
  "march.png") are only found in its first 16,383 tokens, single words anywhere.

The history's orderings get btree indexes too (both databases), so that a search with
?ordering= reads its first matches from an index instead of sorting all of them.

The vector is not a model field: SQLite has no tsvector, and the model must migrate and work on
both. Django never selects the column; PostgreSQL computes it on every insert and update.
The index is on (owner_id, search_vector) with btree_gin, so "this user's records that
match" is one index scan instead of the intersection of two large bitmaps.

On a large existing table, adding the column rewrites it and the index build blocks
writes: run this migration in a quiet window (about 5 minutes per million records on
2 cores; see bench/search.py).
"""

from django.db import migrations, models

# Han (with extensions A, B+ and compatibility ideographs), kana and Hangul syllables.
CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002ffff"

# Characters of a record's text that are indexed: keeps the tsvector under PostgreSQL's
# 1 MB limit even for 40,000 characters of CJK text that are all different bigrams.
MAX_INDEXED_CHARS = 40000


def words(value: str) -> str:
    """SQL for `value` as space-separated tokens for the 'simple' parser: punctuation set
    apart (the parser skips it), each character of a CJK run doubled, so the run "ABC"
    becomes "A AB BC C": its first character, its overlapping bigrams, its last character."""
    spaced = rf"regexp_replace({value}, '([[:punct:]]+|[{CJK}]+)', ' \1 ', 'g')"
    return rf"regexp_replace({spaced}, '([{CJK}])', '\1 \1', 'g')"


def characters(value: str) -> str:
    """SQL for the distinct CJK characters of `value`, as lexemes without positions."""
    return rf"array_to_tsvector(string_to_array(regexp_replace({value}, '[^{CJK}]+', '', 'g'), NULL))"


# Each word of the term is the phrase of its tokens, then, in this order: a lone CJK
# character ("A A") is that character; the phrase drops a run's first character at its
# start and a run's last character at its end (the word may begin or end inside a run).
WORD_QUERY = "part"
for pattern, replacement in (
    (rf"^'([{CJK}])' <-> '\1'$", r"'\1'"),
    (rf"^'([{CJK}])' <-> '\1", r"'\1"),
    (rf"([{CJK}])' <-> '\1'$", r"\1'"),
):
    pattern, replacement = pattern.replace("'", "''"), replacement.replace("'", "''")
    WORD_QUERY = f"regexp_replace({WORD_QUERY}, '{pattern}', '{replacement}')"
WORD_QUERY = WORD_QUERY.replace("part", f"phraseto_tsquery('simple'::regconfig, {words('part')})::text", 1)

NAME = "coalesce($1, '')"
TEXT = f"left(coalesce($2, ''), {MAX_INDEXED_CHARS})"

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS btree_gin",
    f"""CREATE FUNCTION ocr_search_document(file_name text, body text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('simple'::regconfig, {words(NAME)}), 'A')
        || setweight(to_tsvector('simple'::regconfig, {words(TEXT)}), 'B')
        || {characters(f"{NAME} || {TEXT}")}
    $$""",
    f"""CREATE FUNCTION ocr_search_query(term text) RETURNS tsquery
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT coalesce(string_agg('(' || word || ')', ' & '), '')::tsquery
    FROM (SELECT {WORD_QUERY} AS word FROM regexp_split_to_table($1, '\\s+') AS part) AS words
    WHERE word <> ''
    $$""",
    """ALTER TABLE {table} ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (ocr_search_document(file_name, text)) STORED""",
    # Kept in the row (compressed) rather than in the TOAST table, so that checking a
    # record against a query reads one page, not three; the long `lines` go there instead.
    "ALTER TABLE {table} ALTER COLUMN search_vector SET STORAGE MAIN",
    "CREATE INDEX record_owner_search ON {table} USING gin (owner_id, search_vector)",
]

BACKWARD = [
    "DROP INDEX IF EXISTS record_owner_search",
    "ALTER TABLE {table} DROP COLUMN IF EXISTS search_vector",
    "DROP FUNCTION IF EXISTS ocr_search_query(text)",
    "DROP FUNCTION IF EXISTS ocr_search_document(text, text)",
]


def _run(statements: list[str]):
    def operation(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return  # SQLite searches with a plain case-insensitive contains: nothing to build
        table = schema_editor.quote_name(apps.get_model("app", "OcrRecord")._meta.db_table)
        for statement in statements:
            schema_editor.execute(statement.replace("{table}", table), params=None)

    return operation


class Migration(migrations.Migration):
    dependencies = [
        ("app", "0004_jobs_and_batches"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="ocrrecord",
            index=models.Index(fields=["owner", "duration_ms", "id"], name="record_owner_duration"),
        ),
        migrations.AddIndex(
            model_name="ocrrecord",
            index=models.Index(fields=["owner", "file_name", "id"], name="record_owner_file_name"),
        ),
        migrations.AddIndex(
            model_name="ocrrecord",
            index=models.Index(fields=["owner", "engine", "id"], name="record_owner_engine"),
        ),
        migrations.RunPython(_run(FORWARD), _run(BACKWARD), elidable=False),
    ]
