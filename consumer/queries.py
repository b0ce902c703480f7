"""Every SQL statement of the service, read once at import from the `.sql` files under `sql/queries/`.

SQL lives in files so that it is reviewed, diffed and run by hand as SQL; this is the only Python that touches
its text. A file holds blocks that each start with `-- name: verb_noun`; the block (comments included) up to
the next name line is one statement, with `$1…` parameters as asyncpg wants them.
"""

from __future__ import annotations

import re
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
QUERIES_DIR = SQL_DIR / "queries"
MIGRATIONS_DIR = SQL_DIR / "migrations"

_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z][a-z0-9_]*)\s*$", re.MULTILINE)


def load_queries(directory: Path = QUERIES_DIR) -> dict[str, str]:
    """Name → statement for every block of every `.sql` file; a name used twice is an error, not a shadow."""
    queries: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
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


QUERIES: dict[str, str] = load_queries()
