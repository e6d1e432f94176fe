"""Outbound safety (SPEC safety rules, issue 8): connections refuse non-global addresses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.mta_sts import fetch_sts_policy
from handlers.net import Resolver, UnsafeTarget, is_public_address, private_targets_allowed, resolve_public
from tests.support.zonedns import load_zone_file, serve_records

ZONE = Path(__file__).resolve().parent / "fixtures" / "zones" / "internal.example.zone"

REFUSED = [
    # IPv4 special ranges
    "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
    "169.254.169.254", "100.64.0.1", "100.127.255.254", "224.0.0.1", "239.255.255.250", "0.0.0.0",
    "0.1.2.3", "240.0.0.1", "255.255.255.255", "192.0.0.8", "198.18.0.1", "192.0.2.1", "198.51.100.7",
    "203.0.113.9", "192.88.99.1",
    # IPv6 special ranges
    "::", "::1", "fe80::1", "fe80::1%eth0", "fec0::1", "fc00::1", "fd12:3456::1", "ff02::1", "ff0e::1",
    "2001:db8::1", "100::1", "2001:10::1", "64:ff9b:1::a00:1",
    # IPv4-mapped / -compatible / -translated forms of private space
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:192.168.0.1", "::ffff:169.254.169.254", "::ffff:100.64.0.1",
    "::127.0.0.1", "::10.0.0.1", "::ffff:0:127.0.0.1", "::ffff:7f00:1",
    # 6to4 embedding private space
    "2002:7f00:1::1", "2002:a00:1::", "2002:c0a8:101::1", "2002:a9fe:a9fe::1",
    # NAT64 well-known prefix embedding private space
    "64:ff9b::7f00:1", "64:ff9b::127.0.0.1", "64:ff9b::a00:1", "64:ff9b::c0a8:1", "64:ff9b::a9fe:a9fe",
    # Teredo (whatever it embeds)
    "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::7f00:1",
    # not addresses at all
    "", "localhost", "2130706433", "0x7f000001", "127.1", "[::1]", "1.2.3.4.5",
]

ACCEPTED = [
    "8.8.8.8", "1.1.1.1", "9.9.9.9", "142.250.4.26", "2606:4700:4700::1111", "2001:4860:4860::8888",
    "2a00:1450:4001:830::200e", "::ffff:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808",
]


@pytest.mark.parametrize("ip", REFUSED)
def test_non_global_addresses_are_refused(ip: str) -> None:
    assert is_public_address(ip) is False


@pytest.mark.parametrize("ip", ACCEPTED)
def test_global_addresses_are_accepted(ip: str) -> None:
    assert is_public_address(ip) is True


@pytest.fixture(scope="module")
def internal_resolver_ns() -> Iterator[tuple[str, int]]:
    with serve_records(load_zone_file(ZONE)) as ns:
        yield ns


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILCHECK_ALLOW_PRIVATE_TARGETS", raising=False)


PRIVATE_NAMES = ["loopback", "rfc1918", "linklocal", "cgnat", "ula", "mapped", "nat64", "sixtofour"]


@pytest.mark.parametrize("label", PRIVATE_NAMES)
async def test_a_name_resolving_only_to_private_addresses_is_refused(
    internal_resolver_ns: tuple[str, int], guarded: None, label: str
) -> None:
    resolver = Resolver(nameservers=[internal_resolver_ns], timeout=1.0)
    with pytest.raises(UnsafeTarget, match="non-public"):
        await resolve_public(resolver, f"{label}.internal.example")


async def test_mixed_answers_keep_only_public_addresses(internal_resolver_ns: tuple[str, int], guarded: None) -> None:
    resolver = Resolver(nameservers=[internal_resolver_ns], timeout=1.0)
    assert await resolve_public(resolver, "mixed.internal.example") == ["8.8.8.8"]
    assert await resolve_public(resolver, "public.internal.example") == ["8.8.8.8", "2001:4860:4860::8888"]


async def test_literal_private_addresses_are_refused_without_dns(guarded: None) -> None:
    resolver = Resolver(nameservers=[("127.0.0.1", 9)], timeout=0.2)
    for literal in ("127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1"):
        with pytest.raises(UnsafeTarget):
            await resolve_public(resolver, literal)
    assert resolver.stats.asked == 0


async def test_a_name_without_addresses_is_refused(internal_resolver_ns: tuple[str, int], guarded: None) -> None:
    resolver = Resolver(nameservers=[internal_resolver_ns], timeout=1.0)
    with pytest.raises(UnsafeTarget, match="no address"):
        await resolve_public(resolver, "missing.internal.example")


async def test_the_sts_fetch_never_connects_to_a_private_address(
    internal_resolver_ns: tuple[str, int], guarded: None
) -> None:
    resolver = Resolver(nameservers=[internal_resolver_ns], timeout=1.0)
    with pytest.raises(UnsafeTarget):
        await fetch_sts_policy(resolver, "internal.example", timeout=1.0)


@pytest.mark.parametrize("label", PRIVATE_NAMES)
async def test_the_test_switch_lifts_the_guard(
    internal_resolver_ns: tuple[str, int], monkeypatch: pytest.MonkeyPatch, label: str
) -> None:
    monkeypatch.setenv("MAILCHECK_ALLOW_PRIVATE_TARGETS", "1")
    assert private_targets_allowed()
    resolver = Resolver(nameservers=[internal_resolver_ns], timeout=1.0)
    assert await resolve_public(resolver, f"{label}.internal.example")


@pytest.mark.parametrize("value", ["", "0", "true", "yes", " 1"])
def test_only_exactly_1_lifts_the_guard(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MAILCHECK_ALLOW_PRIVATE_TARGETS", value)
    assert not private_targets_allowed()
