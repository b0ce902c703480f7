"""Ask a Kafka broker for cluster metadata over the wire; exit 0 once it lists at least one broker.

Stdlib only, so that `make up` can wait for the broker before any virtual environment exists. A TCP accept is
not enough: a KRaft broker listens before it has registered with its controller, and clients that connect in
that window get empty metadata. Metadata v4 is spoken by every broker from Kafka 1.0 to 4.x.
"""

import socket
import struct
import sys
import time


def _string(s: str) -> bytes:
    data = s.encode()
    return struct.pack(">h", len(data)) + data


def broker_count(host: str, port: int, timeout: float = 2.0) -> int:
    """Send one MetadataRequest v4 and return how many brokers the response names."""
    header = struct.pack(">hhi", 3, 4, 1) + _string("ocpp-stack-ready")
    body = struct.pack(">ib", -1, 0)  # all topics (null array); do not auto-create
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        size_bytes = _recv_exactly(sock, 4)
        response = _recv_exactly(sock, struct.unpack(">i", size_bytes)[0])
    # correlation_id (int32), throttle_time_ms (int32), brokers array length (int32)
    correlation_id, _throttle, brokers = struct.unpack_from(">iii", response, 0)
    if correlation_id != 1:
        raise ValueError(f"unexpected correlation id {correlation_id}")
    return brokers


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


def main() -> int:
    host, port, wait_seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            if broker_count(host, port) > 0:
                return 0
            reason = "metadata lists no broker yet"
        except (OSError, ValueError, struct.error) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            print(f"kafka at {host}:{port} not ready: {reason}", file=sys.stderr)
            return 1
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
