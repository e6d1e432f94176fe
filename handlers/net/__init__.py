"""The network room: DNS lookups and the rules for connecting out.

Import from here, never from the modules inside (lint-imports holds the line):
- `Resolver`: one per run (audit, command, digest); `query()` for a check's lookups,
  `query_many()` for the blocklist engine's bulk path. Results are `DNSResult`s with an
  explicit `Outcome` (SPEC: never a verdict from an answer not received).
- `resolve_public()`, `is_public_address()`, `is_internal_hop()`: which addresses the
  bot may connect to, and which hops of a Received chain are internal.

Inside: `results` (the result model), `wire` (messages, no I/O), `core` (the resolver's
logic, no I/O), `transport` (UDP/TCP), `resolver` and `bulk` (the two transports driving
the core), `servers` (which nameservers), `safety` (connection rules).

Names load on first use: the bounce parser needs only the address rules and starts
without dnspython.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from handlers.net.core import DEFAULT_CONCURRENCY, DEFAULT_MAX_QUERIES, DEFAULT_TIMEOUT
    from handlers.net.resolver import Resolver
    from handlers.net.results import DNSResult, DNSStats, GroupLimit, Outcome
    from handlers.net.safety import (
        UnsafeTarget,
        is_internal_hop,
        is_public_address,
        private_targets_allowed,
        resolve_public,
    )
    from handlers.net.servers import nameservers_from_env, parse_nameserver, system_nameservers
    from handlers.net.wire import reverse_name

_WHERE = {
    "DEFAULT_CONCURRENCY": "core", "DEFAULT_MAX_QUERIES": "core", "DEFAULT_TIMEOUT": "core",
    "Resolver": "resolver",
    "DNSResult": "results", "DNSStats": "results", "GroupLimit": "results", "Outcome": "results",
    "UnsafeTarget": "safety", "is_internal_hop": "safety", "is_public_address": "safety",
    "private_targets_allowed": "safety", "resolve_public": "safety",
    "nameservers_from_env": "servers", "parse_nameserver": "servers", "system_nameservers": "servers",
    "reverse_name": "wire",
}  # fmt: skip

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_QUERIES",
    "DEFAULT_TIMEOUT",
    "DNSResult",
    "DNSStats",
    "GroupLimit",
    "Outcome",
    "Resolver",
    "UnsafeTarget",
    "is_internal_hop",
    "is_public_address",
    "nameservers_from_env",
    "parse_nameserver",
    "private_targets_allowed",
    "resolve_public",
    "reverse_name",
    "system_nameservers",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # once: later lookups don't come here
    return value
