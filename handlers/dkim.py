"""DKIM key audit: given selectors plus discovery over common ones.

DKIM can't be proven absent from DNS: keys live under selector names that are
only known from signed mail. So "no selector found" is a warning that says
exactly that, never "DKIM missing".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass
from typing import Any

from handlers.findings import dns_unknown, finding
from handlers.model import Finding, Severity
from handlers.net import DNSResult, Resolver
from handlers.tags import TagError, parse_tags
from knowledge.selectors import dkim_selectors as common_selectors

# Selectors a user names per audit: a signer uses one or two at a time (RFC 6376 §3.1
# selectors exist for rotation), so more than this is a paste gone wrong, not a need.
MAX_GIVEN_SELECTORS = 20


@dataclass
class DKIMKey:
    selector: str
    record: str
    key_type: str = "rsa"
    bits: int | None = None
    revoked: bool = False
    testing: bool = False
    error: str = ""


def rsa_bits(der: bytes) -> int:
    """Key size of an RSA public key given as SubjectPublicKeyInfo or bare RSAPublicKey DER."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(der)
    except ValueError:
        # Some publishers put a PKCS#1 RSAPublicKey in p= (RFC 6376 says SPKI).
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        pem = b"-----BEGIN RSA PUBLIC KEY-----\n" + base64.encodebytes(der) + b"-----END RSA PUBLIC KEY-----\n"
        key = load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("k=rsa but p= holds a non-RSA key")
    return int(key.key_size)


def parse_key_record(selector: str, text: str) -> DKIMKey:
    key = DKIMKey(selector=selector, record=text)
    try:
        tags = parse_tags(text)
    except TagError as exc:
        key.error = str(exc)
        return key
    if "v" in tags and tags["v"] != "DKIM1":
        key.error = f"v={tags['v']} (must be DKIM1)"
        return key
    key.key_type = tags.get("k", "rsa").lower()
    key.testing = "y" in [f.strip().lower() for f in tags.get("t", "").split(":")]
    if "p" not in tags:
        key.error = "no p= (public key) tag"
        return key
    p = "".join(tags["p"].split())
    if not p:
        key.revoked = True
        return key
    try:
        der = base64.b64decode(p, validate=True)
    except (binascii.Error, ValueError):
        key.error = "p= is not valid base64"
        return key
    if key.key_type == "ed25519":
        if len(der) != 32:
            key.error = f"an ed25519 key is 32 bytes, p= holds {len(der)}"
        else:
            key.bits = 256
        return key
    if key.key_type != "rsa":
        key.error = f"unknown key type k={key.key_type}"
        return key
    try:
        key.bits = rsa_bits(der)
    except (ValueError, TypeError) as exc:
        key.error = f"p= is not an RSA public key ({exc})"
    return key


async def audit_dkim(
    resolver: Resolver, domain: str, selectors: list[str] | None = None, *, discover: bool = True
) -> tuple[list[Finding], dict[str, Any]]:
    given = list(dict.fromkeys(selectors or []))
    out: list[Finding] = []
    if len(given) > MAX_GIVEN_SELECTORS:
        out.append(
            finding(
                "dkim.too_many_selectors",
                "info",
                f"{len(given)} DKIM selectors were given; the first {MAX_GIVEN_SELECTORS} were checked",
                f"One audit checks at most {MAX_GIVEN_SELECTORS} selectors you name (plus the common ones). "
                f"Not checked: {', '.join(given[MAX_GIVEN_SELECTORS:MAX_GIVEN_SELECTORS + 3])}"
                + (", ..." if len(given) > MAX_GIVEN_SELECTORS + 3 else "") + ".",
                evidence={"target": domain, "count": len(given), "limit": MAX_GIVEN_SELECTORS},
                check="dkim",
            )
        )
        given = given[:MAX_GIVEN_SELECTORS]
    names = list(dict.fromkeys(given + (list(common_selectors()) if discover else [])))
    results = await asyncio.gather(*(resolver.txt(f"{s}._domainkey.{domain}") for s in names))
    keys: list[DKIMKey] = []
    failed: list[tuple[str, DNSResult]] = []
    for sel, res in zip(names, results, strict=True):
        if res.failed:
            failed.append((sel, res))
            continue
        records = [t for t in res.texts if "p=" in t or t.lower().startswith("v=dkim1")]
        if not records:
            if sel in given:
                out.append(
                    finding(
                        "dkim.no_selector_found",
                        "critical",
                        f"No DKIM key at {sel}._domainkey.{domain}",
                        f"The selector '{sel}' you gave has no DKIM key record, so signatures made with it fail.",
                        evidence={"target": domain, "selector": sel, "host": f"{sel}._domainkey.{domain}"},
                        remediation=["dkim.publish_key"],
                    )
                )
            continue
        keys.append(parse_key_record(sel, records[0]))
    details = {
        "selectors_tried": len(names),
        "keys": [
            {"selector": k.selector, "type": k.key_type, "bits": k.bits, "revoked": k.revoked, "testing": k.testing,
             "error": k.error or None}
            for k in keys
        ],
    }
    for k in keys:
        out.extend(_key_findings(domain, k))
    for sel, res in failed:
        if sel in given or not keys:
            out.append(dns_unknown("dkim.unknown", f"DKIM selector '{sel}'", res, domain, check="dkim"))
            if not keys and sel not in given:
                break  # one line is enough when discovery itself could not run
    if not keys and not given and not failed:
        out.append(
            finding(
                "dkim.no_selector_found",
                "warning",
                f"No DKIM key found for {domain} under {len(names)} common selectors",
                "DKIM keys sit under selector names that DNS can't list, so this does not prove DKIM is off. "
                "Find the selector in the s= tag of the DKIM-Signature header of a mail you sent and run "
                "again with --selector (or paste the message into mailcheck message).",
                evidence={"target": domain, "count": len(names)},
                remediation=["dkim.publish_key"],
            )
        )
    return out, details


def _key_findings(domain: str, k: DKIMKey) -> list[Finding]:
    host = f"{k.selector}._domainkey.{domain}"
    ev: dict[str, Any] = {"target": domain, "selector": k.selector, "host": host, "record": k.record[:120]}
    if k.error:
        return [
            finding(
                "dkim.invalid_record",
                "critical",
                f"DKIM key record {host} is invalid",
                f"Receivers can't use this key: {k.error}.",
                evidence={**ev, "error": k.error},
                remediation=["dkim.publish_key"],
            )
        ]
    if k.revoked:
        return [
            finding(
                "dkim.revoked",
                "info",
                f"DKIM selector '{k.selector}' of {domain} is revoked (empty p=)",
                "Mail still signed with this selector fails DKIM. Fine if the selector was retired on purpose.",
                evidence=ev,
                remediation=["dkim.replace_revoked"],
            )
        ]
    out: list[Finding] = []
    if k.testing:
        out.append(
            finding(
                "dkim.testing",
                "warning",
                f"DKIM selector '{k.selector}' of {domain} is in testing mode (t=y)",
                "Receivers may treat signatures from a key in testing mode as unsigned. Remove t=y once signing works.",
                evidence={**ev, "value": "t=y"},
                remediation=["dkim.leave_testing"],
            )
        )
    if k.key_type == "rsa" and k.bits is not None and k.bits < 2048:
        severity: Severity = "critical" if k.bits < 1024 else "warning"
        out.append(
            finding(
                "dkim.weak_key",
                severity,
                f"DKIM key '{k.selector}' of {domain} is only {k.bits} bits",
                ("Keys under 1024 bits are rejected by Gmail and Yahoo and can be factored. "
                 if k.bits < 1024
                 else "1024-bit keys are the minimum; 2048 bits is recommended. ")
                + "Publish a 2048-bit key under a new selector and switch signing to it.",
                evidence={**ev, "bits": k.bits},
                remediation=["dkim.rotate_2048"],
            )
        )
    if not out:
        size = f"{k.bits}-bit RSA" if k.key_type == "rsa" else "Ed25519"
        out.append(
            finding(
                "dkim.ok",
                "ok",
                f"DKIM key '{k.selector}' of {domain}: {size}",
                f"Published at {host}.",
                evidence={**ev, "bits": k.bits},
            )
        )
    return out
