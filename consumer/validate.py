"""`ocpp-consumer validate`: run the service's own decoder over JSON lines, for gateway developers.

The verdicts come from `consumer.decode.decode`, the function the consumer runs, so a line that passes here
is a record the service accepts (with no Kafka key: the key check needs a record). One output line per input
line, in order, so the two can be pasted side by side; a blank line is an input too (kind `empty`).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import IO, Any, BinaryIO

import orjson

from consumer.decode import decode
from schemas.events import Ignored, Rejection


def validate_files(files: list[str], *, settings: Any, out: IO[str]) -> int:
    """Write one verdict per line of `files` (stdin if empty or "-"); 0 if all are valid, 1 if not, 2 if unreadable."""
    sources = _open_all(files or ["-"])
    if sources is None:
        return 2
    all_ok = True
    try:
        for source in sources:
            for line in source:
                verdict = _verdict(
                    decode(
                        line.rstrip(b"\r\n"), None,
                        max_clock_skew_seconds=settings.max_clock_skew_seconds,
                        max_delivery_delay_seconds=settings.max_delivery_delay_seconds,
                        max_record_bytes=settings.max_record_bytes,
                    )
                )
                all_ok = all_ok and verdict["ok"]
                out.write(orjson.dumps(verdict, option=orjson.OPT_UTC_Z).decode() + "\n")
    finally:
        for source in sources:
            if source is not sys.stdin.buffer:
                source.close()
    out.flush()
    return 0 if all_ok else 1


def _open_all(files: list[str]) -> list[BinaryIO] | None:
    """Open every file before reading any, so a typo in the last name does not leave half a report."""
    sources: list[BinaryIO] = []
    for name in files:
        if name == "-":
            sources.append(sys.stdin.buffer)
            continue
        try:
            sources.append(open(name, "rb"))  # noqa: SIM115 - closed by validate_files
        except OSError as exc:
            print(f"ocpp-consumer: validate: cannot read {name}: {exc.strerror or exc}", file=sys.stderr)
            for source in sources:
                if source is not sys.stdin.buffer:
                    source.close()
            return None
    return sources


def _verdict(result: Any) -> dict:
    if isinstance(result, Rejection):
        return {"ok": False, "kind": result.kind, "detail": result.detail}
    if isinstance(result, Ignored):
        return {"ok": True, "event": {"ignored": True, **dataclasses.asdict(result)}}
    return {"ok": True, "event": {"action": result.action, **dataclasses.asdict(result)}}
