"""Our own DKIM (and ARC) verification with dkimpy, keys fetched through OUR resolver.

Three phases so the event loop never blocks and DNS goes through the run's
Resolver (its nameservers, cache, timeouts and explicit outcomes):
1. `read_signatures` (thread): dkimpy's own header parse -> the signatures and
   the key names they need (DKIM-Signature, ARC-Seal, ARC-Message-Signature);
2. `fetch_keys` (async): one TXT lookup per key name via `Resolver.txt`;
3. `verify_signatures` / `verify_arc` (thread): dkimpy with a `dnsfunc` that
   returns the fetched text. A lookup without a definitive answer makes the
   signature `unknown`, never `invalid`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from handlers.net import DNSResult, Resolver

MAX_SIGNATURES = 10
MAX_ARC_SETS = 10
HASH_BUDGET = 40 * 1024 * 1024  # bytes canonicalised and hashed across all signatures
WEAK_BITS = 1024  # Gmail and Yahoo require at least 1024-bit keys
RECOMMENDED_BITS = 2048
CLOCK_SLOP_S = 36000  # dkimpy's leeway for signers with wrong clocks (10 h), kept for t= and x=


_LINE_END = re.compile(rb"\r?\n")
_FIELD_CHARS = bytes(range(0x21, 0x7F))  # printable US-ASCII: what a field name is made of


def rfc822_parse(message: bytes) -> tuple[list[list[bytes]], bytes]:
    """dkimpy's `rfc822_parse`, same result, in linear time.

    dkimpy appends every continuation line to the field's value with `+=` on
    bytes, which copies the value each time: a header folded over 100k lines
    took tens of seconds. Here a field's lines are collected and joined once.
    """
    import dkim

    lines = _LINE_END.split(message)
    fields: list[tuple[bytes, list[bytes]]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            break
        if line[0] in (0x09, 0x20):
            if not fields:
                raise dkim.MessageFormatError(f"Unexpected characters in RFC822 header: {line[:60]!r}")
            fields[-1][1].append(line)
            continue
        # dkimpy's re.match(rb"([\x21-\x7e]+?):", line) without the regex: the name ends at
        # the first colon after its first character and is printable ASCII throughout.
        colon = line.find(b":", 1)
        if colon > 0 and not line[:colon].translate(None, _FIELD_CHARS):
            fields.append((line[:colon], [line[colon + 1 :]]))
        elif not line.startswith(b"From "):
            raise dkim.MessageFormatError(f"Unexpected characters in RFC822 header: {line[:60]!r}")
    else:
        i = len(lines)
    headers = [[name, b"\r\n".join(parts) + b"\r\n"] for name, parts in fields]
    return headers, b"\r\n".join(lines[i:])


def _load(cls: Any, raw: bytes, **kwargs: Any) -> Any:
    """A dkimpy DKIM/ARC object for `raw`, its message parsed by our linear rfc822_parse."""
    obj = cls(None, **kwargs)
    if raw:
        obj.headers, obj.body = rfc822_parse(raw)
    return obj


@dataclass
class Signature:
    index: int  # position among DKIM-Signature headers (0 = topmost), dkimpy's idx
    tags: dict[str, str] = field(default_factory=dict)
    parse_error: str = ""

    @property
    def domain(self) -> str:
        return self.tags.get("d", "").strip().lower().rstrip(".")

    @property
    def selector(self) -> str:
        return self.tags.get("s", "").strip().lower()

    @property
    def algorithm(self) -> str:
        return self.tags.get("a", "").strip().lower()

    @property
    def signed_headers(self) -> list[str]:
        return [h.strip().lower() for h in self.tags.get("h", "").split(":") if h.strip()]

    @property
    def key_name(self) -> str:
        if not self.domain or not self.selector:
            return ""
        return f"{self.selector}._domainkey.{self.domain}"


@dataclass
class SigResult:
    sig: Signature
    status: str  # valid / invalid / unknown
    reason: str = ""
    keysize: int | None = None
    key_type: str = ""
    body_hash_ok: bool | None = None
    issues: list[str] = field(default_factory=list)  # weak setups on a valid signature
    key_problem: str = ""  # missing / revoked / unparsable / weak / dns
    dns_error: str = ""

    def to_dict(self) -> dict[str, Any]:
        s = self.sig
        return {
            "domain": s.domain,
            "selector": s.selector,
            "algorithm": s.algorithm,
            "canonicalization": s.tags.get("c", "simple/simple"),
            "signed_headers": s.signed_headers,
            "length": s.tags.get("l"),
            "status": self.status,
            "reason": self.reason,
            "key_bits": self.keysize,
            "key_type": self.key_type,
            "body_hash_ok": self.body_hash_ok,
            "issues": list(self.issues),
        }


@dataclass
class ArcResult:
    cv: str  # pass / fail / none / unknown
    reason: str
    sets: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"cv": self.cv, "reason": self.reason, "sets": self.sets}


@dataclass
class SignatureSet:
    dkim: list[Signature]
    arc_keys: list[str]  # key names the ARC sets need
    arc_instances: int
    extra: int = 0  # signatures beyond MAX_SIGNATURES (not verified)
    error: str = ""


_TAG_SPLIT = re.compile(rb";")


def _tags(value: bytes) -> dict[str, str]:
    import dkim.util

    try:
        parsed = dkim.util.parse_tag_value(value)
        return {k.decode("ascii", "replace").lower(): v.decode("utf-8", "replace") for k, v in parsed.items()}
    except Exception as exc:
        raise ValueError(f"the tag list can't be parsed: {exc}") from exc


def _tolerant_tags(value: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in _TAG_SPLIT.split(value[:8000]):
        k, sep, v = part.partition(b"=")
        if sep:
            out.setdefault(k.strip().decode("ascii", "replace").lower(), b"".join(v.split()).decode("utf-8", "replace"))
    return out


def read_signatures(raw: bytes) -> SignatureSet:
    """Signatures as dkimpy sees them (same order as its `verify(idx)`)."""
    import dkim

    try:
        d = _load(dkim.DKIM, raw)
    except Exception as exc:
        return SignatureSet([], [], 0, error=f"{type(exc).__name__}: {exc}"[:200])
    sigs: list[Signature] = []
    all_sig = [(x, y) for x, y in d.headers if x.lower() == b"dkim-signature"]
    limit = max(2, min(MAX_SIGNATURES, HASH_BUDGET // max(len(raw), 1)))
    for i, (_name, value) in enumerate(all_sig[:limit]):
        try:
            sigs.append(Signature(i, _tags(value)))
        except ValueError as exc:
            sigs.append(Signature(i, _tolerant_tags(value), parse_error=str(exc)[:200]))
    arc_keys: list[str] = []
    instances: set[str] = set()
    for x, y in d.headers:
        if x.lower() in (b"arc-seal", b"arc-message-signature"):
            t = _tolerant_tags(y)
            instances.add(t.get("i", ""))
            if t.get("s") and t.get("d"):
                name = f"{t['s'].lower()}._domainkey.{t['d'].lower().rstrip('.')}"
                if name not in arc_keys and len(arc_keys) < 2 * MAX_ARC_SETS:
                    arc_keys.append(name)
    return SignatureSet(sigs, arc_keys, len(instances), extra=max(0, len(all_sig) - limit))


async def fetch_keys(resolver: Resolver | None, names: list[str]) -> dict[str, DNSResult | None]:
    """TXT records of the key names (None = not looked up: offline run)."""
    import asyncio

    out: dict[str, DNSResult | None] = {}
    uniq = [n for n in dict.fromkeys(names) if n]
    if resolver is None:
        return dict.fromkeys(uniq)
    results = await asyncio.gather(*(resolver.txt(n) for n in uniq))
    for n, r in zip(uniq, results, strict=True):
        out[n] = r
    return out


def _key_text(res: DNSResult) -> tuple[bytes | None, str]:
    """The DKIM key record among the TXT records at the name (and a note when ambiguous)."""
    texts = res.text_bytes
    keys = [t for t in texts if b"p=" in t or t.lower().startswith(b"v=dkim1")]
    if not keys:
        return (texts[0] if texts else None), ""
    note = f"{len(keys)} key records are published at this name; receivers may pick either" if len(keys) > 1 else ""
    return keys[0], note


def _dnsfunc(keys: dict[str, DNSResult | None]) -> Any:
    import dkim

    def lookup(name: bytes | str, timeout: int = 5) -> bytes | None:
        key = (name.decode("ascii", "replace") if isinstance(name, bytes) else str(name)).lower().rstrip(".")
        res = keys.get(key)
        if res is None:
            raise dkim.DnsTimeoutError(f"{key} was not looked up")
        if res.failed:
            raise dkim.DnsTimeoutError(res.describe())
        if not res.ok:
            return None
        text, _ = _key_text(res)
        return text

    return lookup


def verify_signatures(
    raw: bytes, sigset: SignatureSet, keys: dict[str, DNSResult | None], arrived_at: datetime | None = None
) -> list[SigResult]:
    """`arrived_at`: when the receiver got the message (its newest Received date). A
    signature's t= and x= are judged at that moment, as the receiver judged them: a
    message pasted a week later must not fail for an expiry that came after it arrived."""
    as_of = _epoch(arrived_at)
    if as_of is not None and as_of > time.time():
        as_of = None  # a Received date in the future is a wrong clock: judge now
    return [_verify_one(raw, s, keys, as_of) for s in sigset.dkim]


def _epoch(when: datetime | None) -> float | None:
    if when is None:
        return None
    try:
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def _time_problem(tags: dict[bytes, bytes], at: float) -> str:
    """RFC 6376 t=/x= rules ('' = fine), as dkimpy applies them, with expiry judged at
    `at`. A t= in the future stays judged against now: Received dates come from clocks
    as fallible as the signer's, and dkimpy (like receivers) only rejects a t= ahead of
    the verifier's own clock."""
    t_raw, x_raw = tags.get(b"t"), tags.get(b"x")
    t = int(t_raw) if t_raw is not None and t_raw.isdigit() else None
    if t_raw is not None and t is None:
        return f"t= value is not a decimal integer ({t_raw.decode('ascii', 'replace')[:40]})"
    if t is not None and t > time.time() + CLOCK_SLOP_S:
        return "t= value is in the future"
    if x_raw is None:
        return ""
    if not x_raw.isdigit():
        return f"x= value is not a decimal integer ({x_raw.decode('ascii', 'replace')[:40]})"
    x = int(x_raw)
    if x < at - CLOCK_SLOP_S:
        return "x= value is past"
    if t is not None and x < t:
        return "x= value is less than t= value"
    return ""


def _stamp(epoch: int) -> str:
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return str(epoch)


def _verify_as_of(raw: bytes, idx: int, dnsfunc: Any, at: float) -> bool:
    """dkimpy's DKIM.verify with the t=/x= rules applied at `at` instead of now.

    dkimpy reads the clock inside validate_signature_fields; everything else (the
    mandatory tags, the crypto) is its own code, run on the unchanged signature."""
    import dkim
    import dkim.util

    d = _load(dkim.DKIM, raw, minkey=1, timeout=1)
    sigheaders = [(x, y) for x, y in d.headers if x.lower() == b"dkim-signature"]
    if len(sigheaders) <= idx:
        return False
    try:
        sig = dkim.util.parse_tag_value(sigheaders[idx][1])
    except dkim.util.InvalidTagValueList as exc:
        raise dkim.MessageFormatError(exc) from exc
    d.signature_fields = sig
    problem = _time_problem(sig, at)
    if problem:
        raise dkim.ValidationError(problem)
    dkim.validate_signature_fields({k: v for k, v in sig.items() if k not in (b"t", b"x")})
    d.domain, d.selector = sig[b"d"], sig[b"s"]
    include_headers = [x.lower() for x in re.split(rb"\s*:\s*", sig[b"h"])]
    d.include_headers = tuple(include_headers)
    return bool(d.verify_sig(sig, include_headers, sigheaders[idx], dnsfunc))


def _verify_one(raw: bytes, sig: Signature, keys: dict[str, DNSResult | None], as_of: float | None = None) -> SigResult:
    import dkim

    if sig.parse_error:
        return SigResult(sig, "invalid", f"the signature header is malformed: {sig.parse_error}")
    name = sig.key_name
    if not name:
        return SigResult(sig, "invalid", "the signature lacks d= or s=, so no key can be found")
    res = keys.get(name)
    if res is None:
        return SigResult(sig, "unknown", f"the key at {name} was not looked up (offline run)", key_problem="dns",
                         dns_error="not looked up")  # fmt: skip
    if res.failed:
        return SigResult(sig, "unknown", f"the key at {name} could not be fetched: {res.describe()}",
                         key_problem="dns", dns_error=res.describe())  # fmt: skip
    if not res.ok or not res.text_bytes:
        return SigResult(sig, "invalid", f"no DKIM key is published at {name} ({res.describe()})", key_problem="missing")
    text, note = _key_text(res)
    tags = _tolerant_tags(text or b"")
    if "p" in tags and tags["p"].strip() == "":
        return SigResult(sig, "invalid", f"the key at {name} is revoked (empty p=)", key_problem="revoked")
    try:
        _pk, keysize, ktag, _tlsrpt = dkim.evaluate_pk(name.encode(), text)
    except dkim.NaClNotFoundError:
        return SigResult(sig, "unknown", "ed25519 verification needs PyNaCl, which is not installed here",
                         key_type="ed25519")  # fmt: skip
    except Exception as exc:
        return SigResult(sig, "invalid", f"the key record at {name} can't be used: {exc}"[:300], key_problem="unparsable")
    key_type = (ktag or b"").decode("ascii", "replace") if isinstance(ktag, bytes) else str(ktag or "")
    out = SigResult(sig, "unknown", keysize=int(keysize) if keysize else None, key_type=key_type)
    if note:
        out.issues.append(note)
    try:
        ok = _verify_as_of(raw, sig.index, _dnsfunc(keys), time.time() if as_of is None else as_of)
    except dkim.ValidationError as exc:
        msg = str(exc)
        if "body hash mismatch" in msg:
            out.body_hash_ok = False
            out.status, out.reason = "invalid", (
                "body hash mismatch: the body is not what was signed (changed in transit, by a mailing list "
                "footer or a gateway rewriting links, or by the copy you pasted)"
            )
        elif "x= value is past" in msg:
            x = sig.tags.get("x", "")
            when = f" on {_stamp(int(x))}" if x.isdigit() else ""
            out.status, out.reason = "invalid", (
                f"the signature had expired{when} (x={x}) before the message arrived"
                if as_of is not None else f"the signature has expired{when} (x={x})"
            )
        else:
            out.status, out.reason = "invalid", f"the signature is not valid: {msg[:200]}"
        return out
    except dkim.NaClNotFoundError:
        out.status, out.reason = "unknown", "ed25519 verification needs PyNaCl, which is not installed here"
        return out
    except dkim.DnsTimeoutError as exc:
        out.status, out.reason, out.key_problem = "unknown", f"the key could not be fetched: {exc}", "dns"
        return out
    except dkim.DKIMException as exc:
        out.status, out.reason = "invalid", f"the signature can't be checked: {type(exc).__name__}: {exc}"[:300]
        return out
    except Exception as exc:  # dkimpy on hostile input: never let it escape
        out.status, out.reason = "invalid", f"the signature can't be checked: {type(exc).__name__}"
        return out
    out.body_hash_ok = True if ok or "bh" in sig.tags else None
    if not ok:
        out.status = "invalid"
        out.reason = (
            "the signature does not match the signed header fields (a signed header was changed after "
            "signing, or the key does not belong to the signing key)"
        )
        return out
    out.status = "valid"
    if "from" not in sig.signed_headers:
        out.status = "invalid"
        out.reason = "the From header is not signed (RFC 6376 requires it); receivers ignore such signatures"
        return out
    if out.keysize is not None and out.key_type == "rsa" and out.keysize < WEAK_BITS:
        out.status = "invalid"
        out.key_problem = "weak"
        out.reason = f"the key has only {out.keysize} bits; Gmail and Yahoo require at least {WEAK_BITS}"
        return out
    x = sig.tags.get("x", "")
    if as_of is not None and x.isdigit() and int(x) < time.time() - CLOCK_SLOP_S:
        out.issues.append(
            f"the signature expired on {_stamp(int(x))} (x=), after the message arrived: it was valid for the "
            "receiver, but a copy checked now (or forwarded now) fails DKIM"
        )
    if sig.algorithm == "rsa-sha1":
        out.issues.append("rsa-sha1 is obsolete (RFC 8301): many receivers treat it as a failed signature; sign with rsa-sha256")
    if "l" in sig.tags:
        out.issues.append(
            f"l={sig.tags['l']} signs only part of the body: anyone can append content and keep the signature valid"
        )
    if out.keysize is not None and out.key_type == "rsa" and out.keysize < RECOMMENDED_BITS:
        out.issues.append(f"the key has {out.keysize} bits; {RECOMMENDED_BITS} is recommended")
    return out


def verify_arc(raw: bytes, keys: dict[str, DNSResult | None]) -> ArcResult:
    import dkim

    try:
        a = _load(dkim.ARC, raw, minkey=1, timeout=1)
        cv, results, reason = a.verify(dnsfunc=_dnsfunc(keys))
    except dkim.DnsTimeoutError as exc:
        return ArcResult("unknown", f"a key could not be fetched: {exc}")
    except Exception as exc:
        return ArcResult("fail", f"{type(exc).__name__}: {exc}"[:300])
    sets = []
    for r in (results or [])[:MAX_ARC_SETS]:
        sets.append(
            {
                "instance": r.get("instance"),
                "ams_valid": bool(r.get("ams-valid")),
                "as_valid": bool(r.get("as-valid")),
                "cv": _text(r.get("cv")),
                "ams_domain": _text(r.get("ams-domain")),
                "as_domain": _text(r.get("as-domain")),
            }
        )
    text_reason = _text(reason)
    cv_text = _text(cv).lower() or "none"
    if "not looked up" in text_reason or "timeout" in text_reason.lower():
        return ArcResult("unknown", text_reason, sets)
    return ArcResult(cv_text, text_reason, sets)


def _text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return "" if v is None else str(v)
