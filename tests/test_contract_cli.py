"""`ocpp-consumer validate` and `ocpp-consumer schema`, run as a gateway developer would, plus the doc's examples."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from consumer.decode import decode
from schemas.envelope import TRACKED_ENVELOPES, version_and_action
from schemas.events import BootNotification, Heartbeat, NotifyEvent, StatusNotification
from tests.test_contract_decode import record, sn16

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "docs" / "contract.md"


def doc_examples() -> list[dict]:
    """The ```json blocks of docs/contract.md."""
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", CONTRACT.read_text(), re.S)]


def run(*args: str, stdin: bytes = b"", env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "consumer", *args], input=stdin, capture_output=True, cwd=ROOT,
                          env=environment, timeout=60)


MIXED = [
    record(action="Heartbeat"),
    sn16(status="available"),
    record(action="MeterValues", payload={"connectorId": 1}),
    b"not json",
    b"",
    sn16(status="SuspendedEVSE", timestamp="2026-11-24T21:00:00+02:00"),
]


def test_validate_file_of_mixed_lines(tmp_path):
    """One verdict line per input line, in order; exit 1 because some lines are invalid."""
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(MIXED) + b"\n")
    result = run("validate", str(path))
    assert result.returncode == 1, result.stderr
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [line["ok"] for line in lines] == [True, False, True, False, False, True]
    assert lines[0]["event"]["action"] == "Heartbeat"
    assert lines[1]["kind"] == "payload" and "payload.status" in lines[1]["detail"]
    assert lines[2]["event"] == {"ignored": True, "charge_point_id": "CP-1", "ocpp_version": "1.6",
                                 "action": "MeterValues", "event_id": "0b9e5a4c-6f1d-4e2b-9a3c-5d7e8f901234",
                                 "received_at": "2026-11-24T19:00:00Z", "time_corrections": []}
    assert lines[3]["kind"] == "not_json" and lines[4]["kind"] == "empty"
    assert lines[5]["event"]["status"] == "SUSPENDED_EVSE"
    assert lines[5]["event"]["effective_at"] == "2026-11-24T19:00:00Z"
    assert lines[5]["event"]["connector_id"] == 1 and lines[5]["event"]["error_code"] is None


@pytest.mark.parametrize("args", [(), ("-",)])
def test_validate_stdin_all_valid_exits_0(args):
    """Standard input (no file, or "-") is read; all lines valid (ignored actions too) → exit 0."""
    lines = [json.dumps(example).encode() for example in doc_examples()] + [MIXED[2]]
    result = run("validate", *args, stdin=b"\n".join(lines))
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(json.loads(line)["ok"] for line in result.stdout.decode().splitlines())
    assert len(result.stdout.decode().splitlines()) == len(lines) == 12


def test_validate_uses_the_settings():
    """OCPP_MAX_CLOCK_SKEW_SECONDS reaches the decoder: a 60 s future timestamp is corrected when the limit is 30."""
    line = sn16(timestamp="2026-11-24T19:01:00Z")
    default = json.loads(run("validate", stdin=line).stdout)
    tight = json.loads(run("validate", stdin=line, env={"OCPP_MAX_CLOCK_SKEW_SECONDS": "30"}).stdout)
    assert default["event"]["clock_skew_corrected"] is False
    assert tight["event"]["clock_skew_corrected"] is True


def test_validate_missing_file_exits_2(tmp_path):
    """A file that cannot be read: one clear line on stderr naming it, nothing on stdout, exit 2."""
    good = tmp_path / "good.jsonl"
    good.write_bytes(MIXED[0])
    result = run("validate", str(good), str(tmp_path / "missing.jsonl"))
    assert result.returncode == 2
    assert result.stdout == b""
    assert len(result.stderr.decode().strip().splitlines()) == 1 and "missing.jsonl" in result.stderr.decode()


def test_schema_is_a_json_schema_that_accepts_the_doc_examples():
    """`schema` prints a valid 2020-12 JSON Schema that accepts every example of docs/contract.md."""
    result = run("schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=jsonschema.FormatChecker())
    for example in doc_examples():
        validator.validate(example)
    # and it has teeth: a lower-case status, a missing event_id and an extra payload field are refused
    bad = doc_examples()[1]
    for broken in ({**bad, "payload": {**bad["payload"], "status": "charging"}},
                   {k: v for k, v in bad.items() if k != "event_id"},
                   {**bad, "payload": {**bad["payload"], "power": 1}}):
        assert not validator.is_valid(broken)
    # unknown actions are valid, unknown top-level fields are allowed
    assert validator.is_valid({**bad, "action": "MeterValues", "payload": {"anything": 1}, "gateway": "gw-1"})


def test_schema_is_documented():
    """Every envelope field in the schema carries a description, so the schema documents itself."""
    schema = json.loads(run("schema").stdout)
    for model in schema["$defs"].values():
        if "Envelope" in model.get("title", ""):
            for name, prop in model["properties"].items():
                assert prop.get("description"), (model["title"], name)


def test_doc_has_an_example_of_every_tracked_action_that_decodes():
    """docs/contract.md shows one valid example per tracked action and version, and each decodes to its event."""
    examples = doc_examples()
    pairs = [(e["ocpp_version"], e["action"]) for e in examples]
    assert sorted(pairs) == sorted(version_and_action(e) for e in TRACKED_ENVELOPES)
    classes = {"BootNotification": BootNotification, "StatusNotification": StatusNotification, "Heartbeat": Heartbeat,
               "NotifyEvent": NotifyEvent}
    for example in examples:
        event = decode(json.dumps(example).encode(), example["charge_point_id"].encode())
        assert isinstance(event, classes[example["action"]]), (example, event)
        assert not event.clock_skew_corrected


def test_the_port_examples_say_what_the_text_says():
    """The 2.1 NotifyEvent example makes EVSE 1's connectors Occupied and Unavailable at one instant; the 2.0.1
    one sets the station's own status and ignores its temperature item; the 2.1 boot carries its details."""
    by_pair = {(e["ocpp_version"], e["action"]): e for e in doc_examples()}
    plugged = decode(json.dumps(by_pair["2.1", "NotifyEvent"]).encode(), None)
    assert [(s.connector_id, s.evse_connector_id, s.status) for s in plugged.statuses] == [
        (1, 1, "OCCUPIED"), (1, 2, "UNAVAILABLE")]
    assert len({s.effective_at for s in plugged.statuses}) == 1
    station = decode(json.dumps(by_pair["2.0.1", "NotifyEvent"]).encode(), None)
    assert [(s.connector_id, s.status) for s in station.statuses] == [(0, "UNAVAILABLE")]
    assert station.ignored_items == 1
    boot = decode(json.dumps(by_pair["2.1", "BootNotification"]).encode(), None)
    assert (boot.boot_reason, boot.hardware_serial, boot.iccid) == ("FIRMWARE_UPDATE", "KP-2026-0007",
                                                                    "8931440400098765432")
