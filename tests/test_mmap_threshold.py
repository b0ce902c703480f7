"""The service fixes glibc's mmap threshold (consumer/service.py says why): a large buffer freed does not move the
next one into the heap, where a batch's buffers fragmented it and held tens of MB for minutes."""

from __future__ import annotations

import os
import subprocess
import sys

from consumer.tools.relay import free_port

# Run in a fresh process, so that no earlier allocation has moved the threshold. Prints whether a block of 8 MiB,
# allocated after one of that size was freed, is mmapped (glibc's mallinfo2: hblkhd is the bytes held in mmap).
_PROBE = """
import ctypes, os, sys

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "service":
    from consumer.service import run_service
    from consumer.settings import Settings
    # A database that is not listening: the service sets the process up, fails to start, and returns 2.
    assert run_service(Settings(database_url=os.environ["PROBE_DSN"], startup_timeout_seconds=0.1)) == 2
block = bytearray(8 << 20)
del block  # glibc's default: the threshold rises to this block's size
block = bytearray(8 << 20)
print(libc.mallinfo2().hblkhd >= 8 << 20)
"""


def _probe(how: str) -> bool:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_")}
    environment.update(PROBE_DSN=f"postgresql://ocpp:x@127.0.0.1:{free_port()}/ocpp", OCPP_METRICS_PORT="0")
    done = subprocess.run([sys.executable, "-c", _PROBE, how], env=environment, capture_output=True, text=True,
                          timeout=60, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1] == "True"


def test_a_freed_large_buffer_does_not_move_the_next_into_the_heap():
    """glibc's default moves the second block into the heap (the behaviour the service turns off: if a glibc stops
    doing it, this says the setting is no longer needed); after the service has started, it stays in mmap."""
    assert _probe("default") is False
    assert _probe("service") is True
