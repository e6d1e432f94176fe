"""Authentication-Results (RFC 8601) and ARC-Authentication-Results (RFC 8617).

Parsed with the `authres` package; headers it rejects (Microsoft writes no
authserv-id; some receivers add non-standard tokens) get a second try with a
placeholder authserv-id, then a lenient `method=result` scan, so one odd
receiver never hides the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_HEADER = 8000
_INSTANCE = re.compile(r"^\s{0,5}i\s{0,3}=\s{0,3}(\d{1,3})\s{0,3};\s{0,5}", re.I)
_LENIENT = re.compile(r"(?i)(?:^|;)\s{0,20}([a-z][a-z0-9_-]{0,30})\s{0,3}=\s{0,3}([a-z]{1,20})\b([^;]{0,1500})")
_PROP = re.compile(r"(?i)\b(smtp|header|body|policy)\.([a-z0-9_-]{1,30})\s{0,3}=\s{0,3}([^\s;()]{1,320})")
_COMMENT = re.compile(r"\(([^()]{0,500})\)")

PASSING = {"pass", "bestguesspass"}


@dataclass
class MethodResult:
    method: str
    result: str
    props: dict[str, str] = field(default_factory=dict)  # "smtp.mailfrom" -> value
    comment: str = ""
    reason: str = ""

    def prop(self, *names: str) -> str:
        for n in names:
            if self.props.get(n):
                return self.props[n]
        return ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "result": self.result}
        if self.props:
            out["properties"] = dict(self.props)
        if self.comment:
            out["comment"] = self.comment
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class AuthResults:
    authserv_id: str
    results: list[MethodResult]
    header: str  # "Authentication-Results" / "ARC-Authentication-Results"
    position: int  # 0 = topmost header of that name (added last, by the final receiver)
    instance: int | None = None  # ARC i=
    parser: str = "authres"  # authres / authres+placeholder / lenient
    raw: str = ""

    def get(self, method: str) -> list[MethodResult]:
        return [r for r in self.results if r.method == method]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "header": self.header,
            "authserv_id": self.authserv_id,
            "position": self.position,
            "results": [r.to_dict() for r in self.results],
            "parser": self.parser,
        }
        if self.instance is not None:
            out["instance"] = self.instance
        return out


def _from_authres(hdr: Any) -> list[MethodResult]:
    out: list[MethodResult] = []
    for r in getattr(hdr, "results", []) or []:
        props: dict[str, str] = {}
        for p in getattr(r, "properties", []) or []:
            key = f"{getattr(p, 'type', '')}.{getattr(p, 'name', '')}".lower()
            if key not in props and getattr(p, "value", None) is not None:
                props[key] = str(p.value)
        out.append(
            MethodResult(
                method=str(getattr(r, "method", "") or "").lower(),
                result=str(getattr(r, "result", "") or "").lower(),
                props=props,
                comment=str(getattr(r, "result_comment", "") or ""),
                reason=str(getattr(r, "reason", "") or ""),
            )
        )
    return out


def _lenient(value: str) -> tuple[str, list[MethodResult]]:
    head, sep, rest = value.partition(";")
    authserv = head.strip() if sep and "=" not in head else ""
    text = rest if authserv else value
    out: list[MethodResult] = []
    for m in _LENIENT.finditer(text):
        method, result, tail = m.group(1).lower(), m.group(2).lower(), m.group(3)
        if method in ("action", "reason", "header", "smtp", "policy", "compauth") and out and method != "compauth":
            continue
        props = {f"{a.lower()}.{b.lower()}": c for a, b, c in _PROP.findall(tail)}
        c = _COMMENT.search(tail)
        out.append(MethodResult(method, result, props, c.group(1) if c else ""))
    return authserv.split()[0].lower() if authserv else "", out


def parse_authres(value: str, header: str, position: int) -> AuthResults:
    import authres

    value = " ".join(value[:MAX_HEADER].split())
    instance: int | None = None
    if header.lower().startswith("arc-"):
        m = _INSTANCE.match(value)
        if m:
            instance = int(m.group(1))
            value = value[m.end() :]
    ctx = authres.all_features()
    for attempt, text in (("authres", value), ("authres+placeholder", "unknown; " + value)):
        try:
            hdr = ctx.parse_value(text)
        except Exception:
            continue
        sid = str(getattr(hdr, "authserv_id", "") or "")
        return AuthResults(
            authserv_id="" if attempt != "authres" else sid,
            results=_from_authres(hdr),
            header=header,
            position=position,
            instance=instance,
            parser=attempt,
            raw=value[:500],
        )
    sid, results = _lenient(value)
    return AuthResults(sid, results, header, position, instance, "lenient", value[:500])


def receiver_name(ar: AuthResults) -> str:
    if ar.authserv_id:
        return ar.authserv_id
    return "a receiver that names no authserv-id (Microsoft 365 / Outlook.com write it this way)"
