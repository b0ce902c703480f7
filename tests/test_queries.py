"""The SQL files as the code sees them: names checked at import, files found through importlib.resources."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from consumer import queries
from consumer.queries import QUERIES, UnknownQueryError, load_queries, migration_files, query

ROOT = Path(__file__).resolve().parent.parent


def test_query_returns_the_named_statement():
    assert query("lock_migrations") == QUERIES["lock_migrations"]
    assert "pg_advisory_lock" in query("lock_migrations")


def test_misspelt_name_names_itself_and_the_known_ones():
    with pytest.raises(UnknownQueryError) as caught:
        query("lock_migration")
    message = str(caught.value)
    assert "'lock_migration'" in message
    assert "did you mean 'lock_migrations'?" in message
    assert all(name in message for name in QUERIES)


def test_misspelt_binding_fails_at_import(tmp_path):
    """A module that binds a query that does not exist cannot be imported: the typo shows before any call."""
    module = tmp_path / "binds_a_typo.py"
    module.write_text('from consumer.queries import query\n\n_GONE = query("no_such_query")\n')
    spec = importlib.util.spec_from_file_location("binds_a_typo", module)
    with pytest.raises(UnknownQueryError, match="no query named 'no_such_query'.*known queries: .*lock_migrations"):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


def test_source_checkout_reads_the_top_level_sql():
    """Run from the repository (as pytest does), the files are the checkout's sql/, not a copy."""
    assert Path(str(queries.SQL_DIR)) == ROOT / "sql"


def test_migration_files_in_order_with_their_bytes():
    files = migration_files()
    on_disk = sorted((ROOT / "sql" / "migrations").glob("*.sql"))
    assert [name for name, _ in files] == [path.name for path in on_disk]
    assert [data for _, data in files] == [path.read_bytes() for path in on_disk]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("SELECT 1;\n-- name: one\nSELECT 1;\n", "text before the first `-- name:` line"),
        ("-- name: one\nSELECT 1;\n-- name: one\nSELECT 2;\n", "query 'one' is defined twice"),
        ("-- name: one\n\n-- name: two\nSELECT 2;\n", "query 'one' is empty"),
    ],
)
def test_malformed_query_files_are_refused(tmp_path, text, error):
    (tmp_path / "bad.sql").write_text(text)
    with pytest.raises(ValueError, match=error):
        load_queries(tmp_path)
