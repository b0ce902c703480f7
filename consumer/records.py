"""No record can stop the stream: a record whose header key is not UTF-8 is delivered, marked, instead of
breaking `getmany`.

Why. The Kafka protocol says a header key is a UTF-8 string, but brokers do not check, and Go clients or
librdkafka will write any bytes. aiokafka decodes header keys strictly while it parses a fetched batch (in its C
extension, `_crecords/default_records.pyx` `_read_msg`; in the pure-Python parser used under
AIOKAFKA_NO_EXTENSIONS, `_DefaultRecordBatchPy._read_msg`, where the error arrives wrapped in a
CorruptRecordException). The exception leaves `consumer.getmany()` and:

* that partition is stuck: its position stays where the last successful `getmany` left it (the good records
  before the bad one that this call had read are not returned, nor lost), the next fetch brings the same batch
  back and the same error, forever. A replica that does not retry crashes, and so does every replica that
  takes the partition;
* records of *other* partitions that `getmany` had already drained in the same call are lost: their positions
  were advanced, the returned dict never arrives, so a plain retry of `getmany` skips them.

What this module does (the smallest change that keeps aiokafka's fast C parser on the hot path). The fetcher
builds `MemoryRecords(bytes)` for each partition of a fetch response, then iterates its batches. This module
replaces that one name in `aiokafka.consumer.fetcher` with `LenientMemoryRecords`, which hands out aiokafka's own
batches, each wrapped so that iterating it goes through one generator frame. Normally that is all. If aiokafka's
parser raises on a header key, the wrapper parses the rest of *that batch* again, from the same bytes (it knows
where the batch lies in the response), with `_LenientBatch`: aiokafka's pure-Python batch (header, CRC layout,
decompression, record count checks) with a record parser that decodes a header key leniently. The records
already delivered from the batch are skipped by count, so every record is delivered once, in order; the batches
after it go back to the C parser. Only a batch holding such a record pays the Python parser's price.

What the pipeline receives for the hostile record: an ordinary `ConsumerRecord` at its own offset, its key,
value, timestamp and sizes as aiokafka would give them, and `headers` in their original order, each key that is
not UTF-8 decoded with "backslashreplace" (b"bad\\xffkey" arrives as the text 'bad\\\\xffkey'), followed by
one more header, last: `(BAD_HEADER_MARK, detail)`, the detail (UTF-8 bytes) naming the first bad key, its bytes
and what is wrong. Every key stays an exact `str` and every value `bytes` or None, because aiokafka's producer
accepts nothing else (its C builder rejects even a `str` subclass): the record can be dead-lettered as it is.
A producer can write a header of that name, but not that object: `header_problem(record.headers)` checks the
last header's key by identity, so only this module can mark a record. It returns the detail (for a rejection of
kind `bad_header`), or None.

Other ways considered: catching the error around `getmany` and seeking cannot deliver the hostile record (no
aiokafka parser can read it) nor give back the other partitions' lost records; forcing the pure-Python parser
(AIOKAFKA_NO_EXTENSIONS) and patching its header decoding would cost every record 6 to 45 µs instead of about
1 µs (its CRC check and parser are Python), more than the whole per-record budget at 50k records/s.

The patch is applied once, at import, and only to the aiokafka versions whose fetcher and record parsers it was
checked against (SUPPORTED_AIOKAFKA); on any other version the import fails, naming this module. Importing
`header_problem` from here (as the decoder does) is what guarantees the patch is in place.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator, Sequence

import aiokafka
from aiokafka.consumer import fetcher as _fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.record import default_records as _default_records
from aiokafka.record import memory_records as _memory_records
from aiokafka.record.util import decode_varint

__all__ = ["BAD_HEADER_MARK", "LenientMemoryRecords", "header_problem", "install", "SUPPORTED_AIOKAFKA"]

log = logging.getLogger("consumer")

# Versions whose fetcher (`MemoryRecords(...)` in the fetch response handler; `PartitionRecords._unpack_records`
# iterating `records.next_batch()` and `for record in next_batch`) and record parsers (strict header key decoding,
# `_DefaultRecordBatchPy` with `_buffer`, `_pos`, `_read_msg`) are what this module relies on. 0.14.0 is tested;
# 0.11.0 to 0.13.0 have the same code at those places (read from their sources).
SUPPORTED_AIOKAFKA = ("0.11.0", "0.12.0", "0.13.0", "0.14.0")

# Every record batch, whatever its format, starts: base offset (int64), length of the rest (int32).
_LENGTH = struct.Struct(">i")
_LENGTH_OFFSET = 8
_LOG_OVERHEAD = 12
# Header keys shown in a rejection detail are cut to this many bytes.
_SHOWN_KEY_BYTES = 100


# The key of the header that marks a record whose header keys are not all UTF-8. Recognised by identity (`is`):
# a header read from the wire is a new str object, never this one, whatever its text.
BAD_HEADER_MARK = "ocpp.consumer.header_key_not_utf8"


def header_problem(headers: Sequence[tuple[str, bytes | None]]) -> str | None:
    """Why the record's headers cannot be taken as they are (a detail for a `bad_header` rejection), or None.

    O(1): looks at the last header only. Usage: `problem = header_problem(record.headers)`.
    """
    if headers and headers[-1][0] is BAD_HEADER_MARK:
        return headers[-1][1].decode("utf-8", "replace")
    return None


def _mark(raw: bytes, error: UnicodeDecodeError, index: int, count: int) -> bytes:
    shown = raw[:_SHOWN_KEY_BYTES]
    return (f"header {index + 1} of {count}: key {shown!r} is not UTF-8 ({error.reason} at byte {error.start}); "
            f"it is kept as {raw.decode('utf-8', 'backslashreplace')[:2 * _SHOWN_KEY_BYTES]!r}").encode()


class _LenientBatch(_default_records._DefaultRecordBatchPy):
    """aiokafka's pure-Python v2 batch, whose record parser keeps a header key that is not UTF-8, and marks it.

    Used only for the rest of a batch that aiokafka's parser refused. `_read_msg` follows the v2 record layout
    (KIP-98, KIP-82) and aiokafka's own `_DefaultRecordBatchPy._read_msg` line for line, but for the key decoding
    and the mark it adds (module doc).
    """

    def _read_msg(self, decode_varint=decode_varint):
        # Record => Length Attributes TimestampDelta OffsetDelta Key Value [HeaderKey HeaderValue]
        buffer = self._buffer
        pos = self._pos
        length, pos = decode_varint(buffer, pos)
        start_pos = pos
        _, pos = decode_varint(buffer, pos)  # attributes: unused by any record format so far
        ts_delta, pos = decode_varint(buffer, pos)
        if self.timestamp_type == self.LOG_APPEND_TIME:
            timestamp = self.max_timestamp
        else:
            timestamp = self.first_timestamp + ts_delta
        offset_delta, pos = decode_varint(buffer, pos)
        key, pos = _nullable_bytes(buffer, pos)
        value, pos = _nullable_bytes(buffer, pos)
        header_count, pos = decode_varint(buffer, pos)
        if header_count < 0:
            raise CorruptRecordException(f"Found invalid number of record headers {header_count}")
        headers: list[tuple[str, bytes | None]] = []
        mark = None
        for index in range(header_count):
            key_len, pos = decode_varint(buffer, pos)
            if key_len < 0:
                raise CorruptRecordException(f"Invalid negative header key size {key_len}")
            if pos + key_len > len(buffer):
                raise CorruptRecordException(f"Header key of {key_len} bytes runs past the end of the batch")
            raw = bytes(buffer[pos : pos + key_len])
            pos += key_len
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                name = raw.decode("utf-8", "backslashreplace")
                if mark is None:
                    mark = _mark(raw, exc, index, header_count)
            header_value, pos = _nullable_bytes(buffer, pos)
            headers.append((name, header_value))
        if mark is not None:
            headers.append((BAD_HEADER_MARK, mark))
        if pos - start_pos != length:
            raise CorruptRecordException(
                f"Invalid record size: expected to read {length} bytes in record payload, "
                f"but instead read {pos - start_pos}"
            )
        self._pos = pos
        return _default_records._DefaultRecordPy(
            self.base_offset + offset_delta, timestamp, self.timestamp_type, key, value, headers
        )


def _nullable_bytes(buffer: bytearray, pos: int) -> tuple[bytes | None, int]:
    size, pos = decode_varint(buffer, pos)
    if size < 0:
        return None, pos
    if pos + size > len(buffer):
        raise CorruptRecordException(f"Record field of {size} bytes runs past the end of the batch")
    return bytes(buffer[pos : pos + size]), pos + size


def _is_header_key_error(exc: BaseException) -> bool:
    """A strict header key decoding error: raw from the C parser, wrapped by the pure-Python one."""
    return isinstance(exc, UnicodeDecodeError) or (
        isinstance(exc, CorruptRecordException) and isinstance(exc.__cause__, UnicodeDecodeError)
    )


class _Batch:
    """One of aiokafka's v2 batches, whose records fall back to `_LenientBatch` if aiokafka's parser refuses one.

    The fetcher reads the batch's attributes (offsets, flags, CRC) once per batch: they are passed through.
    `next()` without `iter()` (how the fetcher reads a control batch's marker) goes straight to aiokafka's batch.
    """

    __slots__ = ("_batch", "_data", "_start", "_end")

    def __init__(self, batch, data, start: int, end: int) -> None:
        self._batch = batch
        self._data = data
        self._start = start
        self._end = end

    def __getattr__(self, name: str):
        return getattr(self._batch, name)

    def __next__(self):
        return next(self._batch)

    def __iter__(self) -> Iterator:
        return self._records()

    def _records(self) -> Iterator:
        delivered = 0
        try:
            for record in self._batch:
                yield record
                delivered += 1
            return
        except (UnicodeDecodeError, CorruptRecordException) as exc:
            if not _is_header_key_error(exc):
                raise
            error = str(exc)  # not the exception itself: its traceback would hold this frame while it yields
        log.warning(
            "a record's header key is not UTF-8; the rest of its batch is parsed with lenient header keys",
            extra={"base_offset": self._batch.base_offset, "record_in_batch": delivered, "error": error},
        )
        lenient = _LenientBatch(memoryview(self._data)[self._start : self._end])
        for index, record in enumerate(lenient):
            if index >= delivered:
                yield record


class LenientMemoryRecords:
    """aiokafka's MemoryRecords (C or Python, whichever aiokafka uses) whose v2 batches are wrapped in `_Batch`.

    Keeps the fetch response's bytes and where each batch lies in them, which aiokafka's batches do not expose.
    """

    __slots__ = ("_records", "_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._records = _ORIGINAL_MEMORY_RECORDS(data)
        self._data = data
        self._pos = 0

    def size_in_bytes(self) -> int:
        return self._records.size_in_bytes()

    def has_next(self) -> bool:
        return self._records.has_next()

    def next_batch(self):
        start = self._pos
        batch = self._records.next_batch()
        if batch is None:
            return None
        end = self._pos = start + _LOG_OVERHEAD + _LENGTH.unpack_from(self._data, start + _LENGTH_OFFSET)[0]
        if type(batch) is not _DEFAULT_RECORD_BATCH:
            return batch  # message formats v0 and v1 have no headers
        return _Batch(batch, self._data, start, end)


_ORIGINAL_MEMORY_RECORDS = _memory_records.MemoryRecords
_DEFAULT_RECORD_BATCH = _default_records.DefaultRecordBatch


def install() -> None:
    """Make aiokafka's consumer use LenientMemoryRecords. Done at import; calling it again changes nothing.

    Refuses, loudly, an aiokafka this module was not checked against, or one whose fetcher does not read
    records through the name it replaces.
    """
    if _fetcher.MemoryRecords is LenientMemoryRecords:
        return
    version = getattr(aiokafka, "__version__", "unknown")
    problems = []
    if version not in SUPPORTED_AIOKAFKA:
        problems.append(f"aiokafka {version} is not one of {', '.join(SUPPORTED_AIOKAFKA)}")
    if _fetcher.MemoryRecords is not _ORIGINAL_MEMORY_RECORDS:
        problems.append(f"aiokafka.consumer.fetcher.MemoryRecords is {_fetcher.MemoryRecords!r}, not aiokafka's")
    for cls, name in ((_default_records._DefaultRecordBatchPy, "_read_msg"),
                      (_default_records._DefaultRecordBatchPy, "_maybe_uncompress"),
                      (_fetcher.PartitionRecords, "_unpack_records")):
        if not callable(getattr(cls, name, None)):
            problems.append(f"{cls.__qualname__}.{name} is missing")
    if problems:
        raise RuntimeError(
            "consumer/records.py cannot make aiokafka deliver records whose header keys are not UTF-8: "
            + "; ".join(problems)
            + ". Check that this aiokafka still parses header keys strictly and reads fetched records through "
            "aiokafka.consumer.fetcher.MemoryRecords, then update the module (and SUPPORTED_AIOKAFKA)."
        )
    _fetcher.MemoryRecords = LenientMemoryRecords


install()
