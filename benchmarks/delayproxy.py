"""A small delaying DNS proxy (UDP): forwards to an upstream server and holds
every answer for a fixed delay, to model real-world round trips in benchmarks.

    from benchmarks.delayproxy import start_delay_proxy
    host, port, stop = start_delay_proxy(("127.0.0.1", 5353), 0.020)
    ...
    stop()

The proxy runs in its own process (so it never competes with the code being
measured for the event loop or the GIL). Query IDs are rewritten so any number
of clients and in-flight queries can share one upstream socket. UDP only:
answers are small in these benchmarks (a truncated answer is passed on as is).
Run directly: python benchmarks/delayproxy.py UPSTREAM_HOST UPSTREAM_PORT DELAY_S
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any


def start_delay_proxy(upstream: tuple[str, int], delay_s: float) -> tuple[str, int, Callable[[], None]]:
    """Start the proxy; returns (host, port, stop). stop() ends the proxy process."""
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), upstream[0], str(upstream[1]), str(delay_s)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"delay proxy did not start: {line!r}")
    port = int(line.split()[1])

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()

    return "127.0.0.1", port, stop


class _Proxy:
    """Forward queries at once; hold every answer `delay` seconds, then pass it on.

    Built to stay out of the measurement: every answer waits the same delay, so
    held answers form a FIFO with one timer for its head (no heap entry per
    packet), and sockets are drained in batches from plain readers rather than
    one protocol callback per datagram. At blocklist-benchmark rates (5,000+
    packets/s) the first version, a call_later per answer, queued answers for
    several ms beyond the delay, and both clients measured the proxy.
    """

    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        self.delay = delay
        self.loop = asyncio.get_running_loop()
        self.listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.listen.bind(("127.0.0.1", 0))
        self.listen.setblocking(False)
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.up.connect(upstream)
        self.up.setblocking(False)
        for sock in (self.listen, self.up):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.pending: dict[int, tuple[Any, bytes, float]] = {}
        self.held: deque[tuple[float, bytes, Any]] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.next_id = 0
        self.loop.add_reader(self.listen.fileno(), self.from_clients)
        self.loop.add_reader(self.up.fileno(), self.from_upstream)

    @property
    def port(self) -> int:
        return int(self.listen.getsockname()[1])

    def from_clients(self) -> None:
        now = time.monotonic()
        for _ in range(256):
            try:
                data, addr = self.listen.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            if len(data) < 12:
                continue
            for _ in range(65536):
                self.next_id = (self.next_id + 1) & 0xFFFF
                if self.next_id not in self.pending:
                    break
            else:
                continue  # 65536 queries in flight: drop
            qid = self.next_id
            self.pending[qid] = (addr, data[:2], now)
            try:
                self.up.send(qid.to_bytes(2, "big") + data[2:])
            except OSError:
                self.pending.pop(qid, None)

    def from_upstream(self) -> None:
        due = self.loop.time() + self.delay
        for _ in range(256):
            try:
                data = self.up.recv(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # ICMP error from upstream: nothing to pass on
            if len(data) < 12:
                continue
            item = self.pending.pop(int.from_bytes(data[:2], "big"), None)
            if item is None:
                continue
            addr, orig, _t = item
            self.held.append((due, orig + data[2:], addr))
        if self.held and self.timer is None:
            self.timer = self.loop.call_at(self.held[0][0], self.release)

    def release(self) -> None:
        self.timer = None
        now = self.loop.time()
        while self.held and self.held[0][0] <= now:
            _due, data, addr = self.held.popleft()
            try:
                self.listen.sendto(data, addr)
            except OSError:
                pass
        if self.held:
            self.timer = self.loop.call_at(self.held[0][0], self.release)

    async def purge(self) -> None:
        while True:
            await asyncio.sleep(5)
            old = time.monotonic() - 30
            for k in [k for k, v in self.pending.items() if v[2] < old]:
                del self.pending[k]


async def _serve(upstream: tuple[str, int], delay: float) -> None:
    proxy = _Proxy(upstream, delay)
    sys.stdout.write(f"PORT {proxy.port}\n")
    sys.stdout.flush()
    await proxy.purge()


def main() -> None:
    host, port, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    try:
        asyncio.run(_serve((host, port), delay))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
