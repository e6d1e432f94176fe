"""MTA-STS (RFC 8461): the _mta-sts TXT record, the policy file fetched safely, MX coverage."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

from handlers.findings import dns_unknown, finding
from handlers.model import Finding
from handlers.net import Resolver, UnsafeTarget, private_targets_allowed, resolve_public
from handlers.tags import TagError, parse_tags

POLICY_MAX_BYTES = 64 * 1024  # RFC 8461 policies are a few lines; cap what we read

@dataclass
class STSPolicy:
    version: str = ""
    mode: str = ""
    mx: list[str] = field(default_factory=list)
    max_age: int | None = None
    errors: list[str] = field(default_factory=list)


def parse_sts_policy(text: str) -> STSPolicy:
    pol = STSPolicy()
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            pol.errors.append(f"line '{line[:60]}' is not 'key: value'")
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "version":
            pol.version = value
        elif key == "mode":
            pol.mode = value
        elif key == "mx":
            pol.mx.append(value.lower().rstrip("."))
        elif key == "max_age":
            pol.max_age = int(value) if value.isdigit() else None
            if pol.max_age is None or pol.max_age > 31557600:
                pol.errors.append(f"max_age '{value}' must be a number of seconds up to 31557600")
    if pol.version != "STSv1":
        pol.errors.append("version must be STSv1")
    if pol.mode not in ("enforce", "testing", "none"):
        pol.errors.append(f"mode '{pol.mode}' must be enforce, testing or none")
    if pol.max_age is None and not any("max_age" in e for e in pol.errors):
        pol.errors.append("max_age is missing")
    if pol.mode in ("enforce", "testing") and not pol.mx:
        pol.errors.append("no mx: lines, so no MX host can match")
    return pol


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 §4.1: exact match or a '*.' wildcard for exactly one left label."""
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return host.endswith(suffix) and "." not in host[: -len(suffix)]
    return host == pattern


async def fetch_sts_policy(resolver: Resolver, domain: str, timeout: float = 10.0) -> str:
    """GET https://mta-sts.<domain>/.well-known/mta-sts.txt safely: pinned address, no redirects, size cap."""
    import aiohttp
    from aiohttp.abc import AbstractResolver

    host = f"mta-sts.{domain}"
    ips = await resolve_public(resolver, host)
    port = 443
    if private_targets_allowed() and os.environ.get("MAILCHECK_HTTPS_PORT"):
        port = int(os.environ["MAILCHECK_HTTPS_PORT"])  # tests only: a local HTTPS server

    class Pinned(AbstractResolver):
        """Connect only to the addresses checked above (no second DNS lookup, no rebinding)."""

        async def resolve(self, hostname: str, port: int = 0, family: int = socket.AF_INET) -> list[Any]:
            return [
                {"hostname": hostname, "host": ip, "port": port,
                 "family": socket.AF_INET6 if ":" in ip else socket.AF_INET, "proto": 0, "flags": 0}
                for ip in ips
            ]

        async def close(self) -> None:
            return None

    import ssl

    ctx = ssl.create_default_context()
    if private_targets_allowed() and os.environ.get("MAILCHECK_CA_FILE"):
        ctx.load_verify_locations(os.environ["MAILCHECK_CA_FILE"])  # tests only: the fixture CA
    connector = aiohttp.TCPConnector(resolver=Pinned(), use_dns_cache=False, ssl=ctx)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
        url = f"https://{host}:{port}/.well-known/mta-sts.txt"
        async with session.get(url, allow_redirects=False) as resp:  # RFC 8461 §3.3: no redirects
            if resp.status != 200:
                raise ValueError(f"HTTP {resp.status} from {url}")
            ctype = resp.headers.get("Content-Type", "")
            body = await resp.content.read(POLICY_MAX_BYTES + 1)
            if len(body) > POLICY_MAX_BYTES:
                raise ValueError("policy larger than 64 KiB")
            if ctype and not ctype.lower().startswith("text/plain"):
                raise ValueError(f"policy served as {ctype}, RFC 8461 requires text/plain")
            return body.decode("utf-8", "replace")


async def audit_mta_sts(
    resolver: Resolver, domain: str, mx_hosts: list[str], *, fetch: bool = True
) -> tuple[list[Finding], dict[str, Any]]:
    name = f"_mta-sts.{domain}"
    res = await resolver.txt(name)
    details: dict[str, Any] = {}
    if res.failed:
        return [dns_unknown("mta_sts.unknown", "MTA-STS", res, domain, check="mta_sts")], details
    records = [t for t in res.texts if t.lower().startswith("v=stsv1")]
    if not records:
        return [
            finding(
                "mta_sts.missing",
                "info",
                f"{domain} has no MTA-STS policy",
                "Without MTA-STS, senders deliver over TLS only opportunistically: an attacker on the path can "
                "strip STARTTLS. Publish _mta-sts TXT and a policy file once TLS on every MX host works.",
                evidence={"target": domain},
                remediation=["mta_sts.publish"],
            )
        ], details
    details["record"] = records[0]
    if len(records) > 1:
        return [_sts_invalid(domain, records[0], "several v=STSv1 records at " + name)], details
    try:
        tags = parse_tags(records[0])
    except TagError as exc:
        return [_sts_invalid(domain, records[0], str(exc))], details
    if not tags.get("id") or not tags["id"].isalnum() or len(tags["id"]) > 32:
        return [_sts_invalid(domain, records[0], "id= must be 1-32 letters/digits")], details
    if not fetch:
        return [], details
    try:
        text = await fetch_sts_policy(resolver, domain)
    except UnsafeTarget as exc:
        return [
            finding(
                "mta_sts.unknown",
                "unknown",
                f"MTA-STS policy of {domain} was not fetched",
                f"{exc}. mailcheck never connects to private or loopback addresses named by DNS it was asked about.",
                evidence={"target": domain, "error": str(exc)},
                check="mta_sts",
            )
        ], details
    except Exception as exc:  # network, TLS, HTTP: the policy can't be used by senders either
        msg = str(exc) or type(exc).__name__
        return [_sts_invalid(domain, records[0], f"policy fetch failed: {msg}", fetch_error=True)], details
    pol = parse_sts_policy(text)
    details["policy"] = {"mode": pol.mode, "mx": pol.mx, "max_age": pol.max_age}
    if pol.errors:
        return [_sts_invalid(domain, records[0], "; ".join(pol.errors))], details
    out: list[Finding] = []
    uncovered = [h for h in mx_hosts if not any(mx_matches(p, h) for p in pol.mx)]
    if uncovered and pol.mode != "none":
        out.append(
            _sts_invalid(
                domain, records[0],
                f"MX host(s) {', '.join(uncovered)} match no mx: line of the policy ({', '.join(pol.mx)})",
            )
        )
    elif pol.mode == "testing":
        out.append(
            finding(
                "mta_sts.testing",
                "info",
                f"MTA-STS for {domain} is in testing mode",
                "Senders report TLS failures (with TLS-RPT) but still deliver. Switch to mode: enforce when reports are clean.",
                evidence={"target": domain, "mode": pol.mode},
                remediation=["mta_sts.fix_policy"],
            )
        )
    else:
        out.append(
            finding(
                "mta_sts.ok",
                "ok",
                f"MTA-STS for {domain}: mode {pol.mode}",
                f"Policy covers {', '.join(pol.mx)}; max_age {pol.max_age}s.",
                evidence={"target": domain, "mode": pol.mode},
            )
        )
    return out, details


def _sts_invalid(domain: str, record: str, error: str, fetch_error: bool = False) -> Finding:
    return finding(
        "mta_sts.invalid",
        "warning",
        f"MTA-STS for {domain} is broken",
        error + (". Senders that cached an earlier policy may refuse delivery." if fetch_error else "."),
        evidence={"target": domain, "record": record, "error": error},
        remediation=["mta_sts.fix_policy"],
    )
