"""Decode rate on one core for a realistic record mix: `python -m bench.decode_bench [--records N] [--rounds R]`.

Not a test: a figure to compare before and after a change, recorded in docs/contract.md under "Performance".
The mix is what a fleet sends: mostly StatusNotification and Heartbeat, a few BootNotification, 70 % OCPP 1.6 and
30 % 2.0.1, a few percent invalid and ignored records; keys set as a gateway sets them. The records are built
before timing, so only `decode` is measured.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pydantic
import pydantic_core

from consumer.decode import decode

STATUS_16 = ["Available", "Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Faulted"]
STATUS_201 = ["Available", "Occupied", "Reserved", "Unavailable", "Faulted"]


def _record(rng: random.Random, i: int) -> tuple[bytes, bytes]:
    version = "1.6" if rng.random() < 0.7 else "2.0.1"
    cp = f"CP-{rng.randrange(5000):05d}"
    ts = f"2026-11-24T19:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(1000):03d}Z"
    roll = rng.random()
    if roll < 0.55:
        action = "StatusNotification"
        if version == "1.6":
            fault = rng.random() < 0.05
            payload = {"connectorId": rng.randrange(3), "errorCode": "GroundFailure" if fault else "NoError",
                       "status": "Faulted" if fault else rng.choice(STATUS_16), "timestamp": ts}
        else:
            payload = {"timestamp": ts, "connectorStatus": rng.choice(STATUS_201), "evseId": rng.randrange(1, 3),
                       "connectorId": 1}
    elif roll < 0.93:
        action, payload = "Heartbeat", {}
    elif roll < 0.97:
        action = "BootNotification"
        if version == "1.6":
            payload = {"chargePointVendor": "Alfen BV", "chargePointModel": "Eve Single Pro",
                       "firmwareVersion": "5.8.1-4123", "chargePointSerialNumber": "ACE0123456"}
        else:
            payload = {"reason": "PowerUp", "chargingStation": {"vendorName": "ABB", "model": "Terra AC",
                                                                 "firmwareVersion": "1.4.2", "serialNumber": "T123"}}
    elif roll < 0.99:
        action, payload = "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": ts, "sampledValue": [
            {"value": "1234.5", "measurand": "Energy.Active.Import.Register"}]}]}
    else:
        action, payload = "StatusNotification", {"connectorId": -1, "errorCode": "NoError", "status": "available"}
    envelope = {"event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "charge_point_id": cp,
                "ocpp_version": version, "action": action, "received_at": ts, "payload": payload}
    return orjson.dumps(envelope), cp.encode()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    rng = random.Random(1)
    records = [_record(rng, i) for i in range(args.records)]
    outcomes = Counter(type(decode(v, k)).__name__ for v, k in records)
    mean_bytes = sum(len(v) for v, _ in records) / len(records)

    print(f"python {platform.python_version()} ({platform.python_implementation()}), pydantic {pydantic.VERSION}, "
          f"pydantic-core {pydantic_core.__version__}, orjson {orjson.__version__}")
    print(f"{platform.machine()} {_cpu_model()}, {os.cpu_count()} CPUs; one core used; load average "
          f"{os.getloadavg()[0]:.2f} (other work on the machine lowers the figure)")
    print(f"{len(records)} records, mean {mean_bytes:.0f} bytes; outcomes {dict(outcomes)}")
    rates = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for value, key in records:
            decode(value, key)
        rates.append(len(records) / (time.perf_counter() - started))
    rates.sort()
    print(f"decode: best {rates[-1]:,.0f} events/s, median {rates[len(rates) // 2]:,.0f} events/s "
          f"({1e6 / rates[len(rates) // 2]:.2f} µs/event)")


if __name__ == "__main__":
    main()
