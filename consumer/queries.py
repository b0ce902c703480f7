"""Every SQL statement of the service, and the migration files, read with `importlib.resources`.

SQL lives in files so that it is reviewed, diffed and run by hand as SQL; this is the only Python that touches
its text. A file under `sql/queries/` holds blocks that each start with `-- name: verb_noun`; the block (comments
included) up to the next name line is one statement, with `$1…` parameters as asyncpg wants them.

Callers bind the statements they use at module level, `_LOCK = query("lock_migrations")`, so a misspelt name
stops the import of the module that uses it rather than the first call at run time.

Where the files are: the repository keeps `sql/` at its top; the wheel carries the same tree inside the package
as `consumer/sql/` (pyproject.toml maps it there). An installed wheel reads that copy. A source checkout — an
editable install, or pytest importing `consumer` from the repository root — has no `consumer/sql/` and reads the
top-level `sql/` beside the package. There is one copy of every file either way, so nothing can drift.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType

_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z][a-z0-9_]*)\s*$", re.MULTILINE)


class UnknownQueryError(LookupError):
    """A query name that no `-- name:` line under sql/queries/ defines: a typo, found at import."""


def _sql_dir() -> Traversable:
    """The `sql/` tree: the copy the wheel carries inside the package, else the checkout's top-level one."""
    shipped = resources.files("consumer") / "sql"
    if shipped.is_dir():
        return shipped
    checkout = Path(__file__).resolve().parent.parent / "sql"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"no SQL files: neither {shipped} (an installed wheel) nor {checkout} (a source checkout) exists; "
        "reinstall the package"
    )


SQL_DIR: Traversable = _sql_dir()
QUERIES_DIR: Traversable = SQL_DIR / "queries"
MIGRATIONS_DIR: Traversable = SQL_DIR / "migrations"


def _sql_files(directory: Traversable) -> list[Traversable]:
    """The `.sql` files directly in `directory`, in name order."""
    return sorted(
        (entry for entry in directory.iterdir() if entry.name.endswith(".sql") and entry.is_file()),
        key=lambda entry: entry.name,
    )


def load_queries(directory: Traversable = QUERIES_DIR) -> dict[str, str]:
    """Name → statement for every block of every `.sql` file; a name used twice is an error, not a shadow."""
    queries: dict[str, str] = {}
    for path in _sql_files(directory):
        text = path.read_text(encoding="utf-8")
        names = list(_NAME_LINE.finditer(text))
        if text[: names[0].start() if names else len(text)].strip():
            raise ValueError(f"{path}: text before the first `-- name:` line")
        for match, following in zip(names, names[1:] + [None]):
            name = match.group(1)
            if name in queries:
                raise ValueError(f"{path}: query {name!r} is defined twice")
            body = text[match.end() : following.start() if following else len(text)].strip()
            if not body:
                raise ValueError(f"{path}: query {name!r} is empty")
            queries[name] = body
    return queries


QUERIES: Mapping[str, str] = MappingProxyType(load_queries())
"""Name → statement, read-only. Prefer `query(name)` bound at module level: it names a typo at import."""


def query(name: str) -> str:
    """The statement named `name` (`-- name: …` in sql/queries/*.sql); UnknownQueryError naming the known ones."""
    try:
        return QUERIES[name]
    except KeyError:
        close = difflib.get_close_matches(name, QUERIES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownQueryError(
            f"no query named {name!r} in {QUERIES_DIR}{hint}; known queries: {', '.join(sorted(QUERIES))}"
        ) from None


def migration_files() -> list[tuple[str, bytes]]:
    """(file name, contents) of every `.sql` file in sql/migrations/, in name order: the order they apply."""
    return [(path.name, path.read_bytes()) for path in _sql_files(MIGRATIONS_DIR)]
