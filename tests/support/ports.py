"""Loopback UDP + TCP sockets on one port (a DNS server's address) for test servers.

The kernel picks a free UDP port; the TCP port of the same number may still be
taken (a client socket in TIME_WAIT from an earlier test), so pick again then.
"""

from __future__ import annotations

import socket


def udp_tcp_pair(host: str = "127.0.0.1", backlog: int = 64) -> tuple[socket.socket, socket.socket, int]:
    """(udp, listening tcp, port), both bound to `host`:port."""
    last: OSError | None = None
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((host, 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers do not block it
        try:
            t.bind((host, port))
            t.listen(backlog)
        except OSError as exc:
            last = exc
            u.close()
            t.close()
            continue
        return u, t, port
    raise OSError(f"no free UDP+TCP port pair on {host}: {last}")
