"""decode() never raises, whatever the bytes, and its cheap byte-level checks agree with an exact parse."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.decode import MAX_DETAIL, decode
from schemas.events import Ignored, Rejection
from tests.test_contract_decode import envelope

KINDS = {"empty", "too_large", "not_utf8", "not_json", "envelope", "payload", "key_mismatch"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def check(value: bytes | None, key: bytes | None) -> None:
    result = decode(value, key, max_record_bytes=4096)
    if isinstance(result, Rejection):
        assert result.kind in KINDS, result  # in particular never `internal`: that would be a bug of ours
        assert 0 < len(result.detail) <= MAX_DETAIL
    else:
        # Anything accepted is UTF-8 JSON without NUL, so it cannot poison a database batch.
        text = value.decode("utf-8")
        assert "\x00" not in json.dumps(json.loads(text), ensure_ascii=False)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.none(), st.binary(max_size=300)), st.one_of(st.none(), st.binary(max_size=8)))
def test_arbitrary_bytes_never_raise(value, key):
    """Arbitrary bytes (and keys) give an event or a Rejection of a documented kind, never an exception."""
    check(value, key)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_never_raises(document):
    """Arbitrary JSON documents (not envelopes) never raise."""
    check(json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass"), None)


ENVELOPE_FIELDS = ["event_id", "charge_point_id", "ocpp_version", "action", "received_at", "payload"]


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["1.6", "2.0.1", "2.1"]),
    st.sampled_from(["BootNotification", "StatusNotification", "Heartbeat", "NotifyEvent", "MeterValues"]),
    st.dictionaries(st.sampled_from(ENVELOPE_FIELDS + ["extra"]), json_values, max_size=3),
    st.dictionaries(st.sampled_from(["connectorId", "errorCode", "status", "timestamp", "evseId", "connectorStatus",
                                     "chargingStation", "reason", "customData", "generatedAt", "seqNo", "eventData",
                                     "x"]), json_values, max_size=4),
)
def test_near_envelopes_never_raise(version, action, replaced, payload):
    """Envelopes with random fields replaced by random JSON, and random payloads, never raise."""
    document = {**envelope(version, action, payload), **replaced}
    check(json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass"), b"CP-1")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(["\x00", "\\", "u", "0", "a", '"', "\n", "N", "I"]), max_size=12))
def test_nul_check_matches_an_exact_parse(text):
    """A NUL anywhere in a string is rejected, and only then: the raw-bytes shortcut agrees with parsing."""
    value = json.dumps(envelope("2.0.1", "Authorize", {"data": text, text: 1})).encode()
    result = decode(value, None)
    if "\x00" in text:
        assert isinstance(result, Rejection) and result.kind == "payload" and "NUL" in result.detail
    else:
        assert isinstance(result, Ignored), result
