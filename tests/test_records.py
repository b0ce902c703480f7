"""consumer/records.py: a record whose header key is not UTF-8 reaches the pipeline, marked, and costs no other record.

The hostile record is written to the real broker as a Go client or librdkafka would write it: a v2 record batch
whose header key bytes are not UTF-8, sent in a raw ProduceRequest (aiokafka's producer refuses a non-str key;
the broker checks the batch's CRC and framing, not its header keys). It sits mid-batch, between good records,
and batches of good records come before and after it.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.consumer import fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record import default_records, memory_records

import consumer.records as records
from consumer.records import BAD_HEADER_MARK, header_problem
from tests.kafka_utils import consume_all

HOSTILE_KEY = b"bad\xff\xfekey"  # 0xff can start no UTF-8 sequence
HOSTILE_DETAIL = (b"header 2 of 3: key b'bad\\xff\\xfekey' is not UTF-8 (invalid start byte at byte 3); "
                  b"it is kept as 'bad\\\\xff\\\\xfekey'")
GZIP, LZ4 = 1, 3
# ProduceResponse error codes worth waiting out on a topic created a moment ago.
_NOT_READY = {3, 5, 6}  # UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER


class _RawKey(str):
    """A header key that encodes to arbitrary bytes, as the batch builder asks it to (`key.encode("utf-8")`)."""

    def __new__(cls, raw: bytes) -> _RawKey:
        key = super().__new__(cls, raw.decode("latin-1"))
        key.raw = raw
        return key

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.raw


def _good(n: int, partition: int = 0) -> tuple[bytes, bytes, list]:
    return b"CP-1", b"good-%d-%d" % (partition, n), [("traceparent", b"00-%d" % n)]


def _hostile() -> tuple[bytes, bytes, list]:
    return b"CP-1", b"hostile", [("ok", b"1"), (_RawKey(HOSTILE_KEY), b"v"), ("after", None)]


def _batch(recs: list[tuple[bytes, bytes, list]], compression: int = 0) -> bytes:
    """A v2 record batch, as any client writes it (aiokafka's pure-Python builder, which encodes keys we give)."""
    builder = default_records._DefaultRecordBatchBuilderPy(
        magic=2, compression_type=compression, is_transactional=0, producer_id=-1, producer_epoch=-1,
        base_sequence=-1, batch_size=1 << 20,
    )
    for offset, (key, value, headers) in enumerate(recs):
        assert builder.append(offset, timestamp=None, key=key, value=value, headers=headers) is not None
    data = bytes(builder.build())
    if compression == 0 and any(isinstance(k, _RawKey) for _, _, hs in recs for k, _ in hs):
        assert HOSTILE_KEY in data  # the broker gets the raw bytes, not a re-encoding of them
    return data


async def _produce_batches(bootstrap: str, topic: str, partition: int, batches: list[bytes]) -> None:
    """Send each batch in its own ProduceRequest (acks=all) and check that the broker appended it."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    tp = TopicPartition(topic, partition)
    try:
        for data in batches:
            deadline = time.monotonic() + 30
            while True:
                await client._wait_on_metadata(topic)
                leader = client.cluster.leader_for_partition(tp)
                response = await client.send(leader, ProduceRequest(
                    transactional_id=None, required_acks=-1, timeout=30_000, topics=[(topic, [(partition, data)])],
                ))
                [(_, [(_, error, *_)])] = response.topics
                if error == 0:
                    break
                assert error in _NOT_READY and time.monotonic() < deadline, f"produce failed with error {error}"
                await client.force_metadata_update()
                await asyncio.sleep(0.2)
    finally:
        await client.close()


async def _read(bootstrap: str, topic: str, expected: int, *, max_records: int | None) -> list:
    """A plain consumer's getmany, `max_records` at a time, until `expected` records came (or 30 s passed)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    got: list = []
    deadline = time.monotonic() + 30
    try:
        while len(got) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=max_records)
            got += [r for rs in batch.values() for r in rs]
        batch = await consumer.getmany(timeout_ms=500)  # nothing more, nothing twice
        got += [r for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return got


async def _hostile_topic(bootstrap: str, topic_factory, compression: int = 0) -> str:
    """Offsets 0-2 good | 3, 4 good, 5 hostile, 6, 7 good (one batch) | 8-10 good."""
    topic = await topic_factory("hostile")
    await _produce_batches(bootstrap, topic, 0, [
        _batch([_good(0), _good(1), _good(2)], compression),
        _batch([_good(3), _good(4), _hostile(), _good(6), _good(7)], compression),
        _batch([_good(8), _good(9), _good(10)], compression),
    ])
    return topic


def _assert_delivered(got: list, partition: int = 0) -> None:
    """All 11 records of `_hostile_topic`, in order, once each; the hostile one marked, the others untouched."""
    got = [r for r in got if r.partition == partition]
    assert [r.offset for r in got] == list(range(11))
    assert [r.value for r in got] == [b"good-0-%d" % n if n != 5 else b"hostile" for n in range(11)]
    for record in got:
        if record.offset == 5:
            continue
        assert record.headers == (("traceparent", b"00-%d" % record.offset),)
        assert all(type(k) is str for k, _ in record.headers)
        assert header_problem(record.headers) is None
    hostile = got[5]
    assert hostile.key == b"CP-1"
    assert hostile.headers == (
        ("ok", b"1"), ("bad\\xff\\xfekey", b"v"), ("after", None), (BAD_HEADER_MARK, HOSTILE_DETAIL)
    )
    assert all(type(k) is str and type(v) in (bytes, type(None)) for k, v in hostile.headers)  # a producer takes them
    assert hostile.headers[-1][0] is BAD_HEADER_MARK
    assert header_problem(hostile.headers) == HOSTILE_DETAIL.decode()


@pytest.fixture(params=["default", "pure-python"])
def parser(request, monkeypatch) -> str:
    """aiokafka's parser as installed (its C extension unless AIOKAFKA_NO_EXTENSIONS is set), or its pure-Python
    one: what AIOKAFKA_NO_EXTENSIONS selects for the fetch path, swapped in for this test only."""
    if request.param == "pure-python":
        monkeypatch.setattr(memory_records, "DefaultRecordBatch", default_records._DefaultRecordBatchPy)
        monkeypatch.setattr(records, "_ORIGINAL_MEMORY_RECORDS", memory_records._MemoryRecordsPy)
        monkeypatch.setattr(records, "_DEFAULT_RECORD_BATCH", default_records._DefaultRecordBatchPy)
    return request.param


@pytest.mark.kafka
@pytest.mark.parametrize("compression", [0, GZIP, LZ4], ids=["plain", "gzip", "lz4"])
@pytest.mark.parametrize("max_records", [None, 2, 5], ids=["all", "by-2", "by-5"])
async def test_hostile_header_key_is_delivered_in_order(kafka_bootstrap, topic_factory, parser, compression,
                                                        max_records):
    """Every record, the hostile one included, once and in order, however getmany slices the batches."""
    topic = await _hostile_topic(kafka_bootstrap, topic_factory, compression)
    _assert_delivered(await _read(kafka_bootstrap, topic, 11, max_records=max_records))


@pytest.mark.kafka
async def test_a_plain_consume_gets_everything(kafka_bootstrap, topic_factory):
    """The shared helper (getmany with no limit) sees the same: nothing raises, nothing is missing."""
    topic = await _hostile_topic(kafka_bootstrap, topic_factory)
    _assert_delivered(await consume_all(kafka_bootstrap, topic, 11))


@pytest.mark.kafka
async def test_other_partitions_lose_nothing(kafka_bootstrap, topic_factory, parser):
    """Without the fix, records that getmany had drained from another partition in the same call were lost."""
    topic = await topic_factory("hostile", partitions=2)
    await _produce_batches(kafka_bootstrap, topic, 0, [
        _batch([_good(0), _good(1), _good(2)]),
        _batch([_good(3), _good(4), _hostile(), _good(6), _good(7)]),
        _batch([_good(8), _good(9), _good(10)]),
    ])
    await _produce_batches(kafka_bootstrap, topic, 1, [_batch([_good(n, 1) for n in range(5)])])
    got = await _read(kafka_bootstrap, topic, 16, max_records=None)
    _assert_delivered(got, partition=0)
    assert [(r.offset, r.value) for r in got if r.partition == 1] == [(n, b"good-1-%d" % n) for n in range(5)]


@pytest.mark.kafka
async def test_a_fetch_that_starts_after_the_hostile_record_is_not_stopped_by_it(kafka_bootstrap, topic_factory):
    """After a restart past it (offset 6 committed), the broker still sends its whole batch, 3 to 7."""
    topic = await _hostile_topic(kafka_bootstrap, topic_factory)
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
    await consumer.start()
    got: list = []
    try:
        consumer.assign([tp])
        consumer.seek(tp, 6)
        deadline = time.monotonic() + 30
        while len(got) < 5 and time.monotonic() < deadline:
            got += (await consumer.getmany(timeout_ms=500)).get(tp, [])
    finally:
        await consumer.stop()
    assert [(r.offset, r.value) for r in got] == [(n, b"good-0-%d" % n) for n in range(6, 11)]


@pytest.mark.kafka
async def test_the_marked_record_can_be_sent_on(kafka_bootstrap, topic_factory):
    """Keys are exact str, values bytes: a dead letter carrying the marked headers is accepted and reads back."""
    topic = await _hostile_topic(kafka_bootstrap, topic_factory)
    hostile = (await consume_all(kafka_bootstrap, topic, 11))[5]
    dlq = await topic_factory("dlq")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(dlq, hostile.value, key=hostile.key, headers=list(hostile.headers))
    finally:
        await producer.stop()
    [letter] = await consume_all(kafka_bootstrap, dlq, 1)
    assert letter.headers == hostile.headers  # the same text, the mark's too
    assert header_problem(letter.headers) is None  # but read back from the wire, the mark is not ours: no alarm


@pytest.mark.kafka
async def test_read_committed_still_skips_aborted_transactions(kafka_bootstrap, topic_factory):
    """The consumer's isolation level reads a control batch's marker through the wrapped batch: still right."""
    topic = await _hostile_topic(kafka_bootstrap, topic_factory)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"tx-{uuid.uuid4().hex[:8]}")
    await producer.start()
    try:
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted", key=b"CP-1", partition=0)
        await producer.abort_transaction()
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"committed", key=b"CP-1", partition=0)
        await producer.commit_transaction()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                                isolation_level="read_committed")
    await consumer.start()
    got: list = []
    try:
        deadline = time.monotonic() + 30
        while len(got) < 12 and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            got += [r for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    _assert_delivered(got[:11])
    assert [r.value for r in got[11:]] == [b"committed"]


@pytest.mark.kafka
async def test_without_the_fix_getmany_raises_and_the_partition_is_stuck(kafka_bootstrap, topic_factory,
                                                                          monkeypatch):
    """The defect, shown on the same topic: aiokafka's own MemoryRecords in the fetcher, as before the fix."""
    monkeypatch.setattr(fetcher, "MemoryRecords", memory_records.MemoryRecords)
    topic = await _hostile_topic(kafka_bootstrap, topic_factory)
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        for _ in range(3):  # a retry does not help: the next fetch brings the same batch back
            # UnicodeDecodeError from the C parser; wrapped in a CorruptRecordException by the pure-Python one.
            with pytest.raises((UnicodeDecodeError, CorruptRecordException)) as raised:
                await consumer.getmany(timeout_ms=5000)
            error = raised.value if isinstance(raised.value, UnicodeDecodeError) else raised.value.__cause__
            assert isinstance(error, UnicodeDecodeError) and error.object == HOSTILE_KEY
            assert await consumer.position(tp) == 0  # good records 0-4 never delivered
    finally:
        await consumer.stop()


def test_header_problem_is_only_our_mark():
    assert header_problem(()) is None
    assert header_problem((("a", b"1"), ("b", None))) is None
    forged = "".join(["ocpp.consumer.", "header_key_not_utf8"])  # what a producer's header decodes to
    assert forged == BAD_HEADER_MARK and forged is not BAD_HEADER_MARK
    assert header_problem((("a", b"1"), (forged, b"why"))) is None
    assert header_problem((("a", b"1"), (BAD_HEADER_MARK, b"why"))) == "why"


def test_install_is_done_once_and_refuses_an_unchecked_aiokafka(monkeypatch):
    assert fetcher.MemoryRecords is records.LenientMemoryRecords
    records.install()  # again: nothing changes
    assert fetcher.MemoryRecords is records.LenientMemoryRecords
    monkeypatch.setattr(fetcher, "MemoryRecords", memory_records.MemoryRecords)
    monkeypatch.setattr(records.aiokafka, "__version__", "0.15.0")
    with pytest.raises(RuntimeError, match=r"aiokafka 0\.15\.0 is not one of"):
        records.install()
    assert fetcher.MemoryRecords is memory_records.MemoryRecords
