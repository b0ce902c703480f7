"""Structured logs: one JSON object per line on stderr, so log shippers need no parsing rules.

Fields passed with `extra={...}` become top-level keys; that is how counters and offsets reach the log line.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone

import orjson

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged as a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class _ConnectionFailuresAreWarnings(logging.Filter):
    """aiokafka logs every failed connection attempt at ERROR; while a broker is away that is a transient
    condition the service waits out (and logs as such), so at most a warning. An error line means we gave up."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and str(record.msg).startswith("Unable connect to"):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka logs every retried connection at ERROR/WARNING; ours already says what matters, once.
    logging.getLogger("aiokafka").setLevel(max(logging.getLevelName(level), logging.WARNING))
    handler.addFilter(_ConnectionFailuresAreWarnings())
