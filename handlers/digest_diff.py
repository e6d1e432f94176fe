"""What changed between two runs of the same check: Report vs Report -> changes.

Pure code, no Slack, no database: the digest (bot/digest.py) stores each
target's `Report.to_dict()` as a snapshot and calls `diff_reports(previous,
current)` on the next run. Both sides may be a `Report` or its JSON dict.

Honesty rules (SPEC: never a verdict from an answer not received):
- a record is "removed" only when the new run could see that part of the
  domain (no `unknown` finding for that check); otherwise nothing is said;
- a list is "delisted" only on a `clean` answer; `listed -> unknown` is not
  a delisting;
- `unknown` findings (timeouts, refusals) never count as new problems.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from handlers.model import Report
from knowledge.digest_texts import digest_text

# Order in a digest: what broke first, then what is worth knowing, then good news.
IMPORTANCE = {"critical": 0, "warning": 1, "info": 2, "ok": 3}
DMARC_RANK = {"none": 0, "quarantine": 1, "reject": 2}
SPF_ALL_RANK = {"+": 0, "?": 1, "~": 2, "-": 3}
SPF_ALL_TEXT = {"+": "+all", "?": "?all", "~": "~all", "-": "-all"}
_CHECK_NAMES = {
    "spf": "SPF",
    "dmarc": "DMARC",
    "dkim": "DKIM",
    "mx": "MX",
    "mta_sts": "MTA-STS",
    "tls_rpt": "TLS-RPT",
    "bimi": "BIMI",
    "ptr": "PTR",
}


@dataclass
class Change:
    """One change. `key` + `params` say it in any language (`describe`); `text` is the English."""

    target: str
    kind: str  # listed delisted no_longer_used record_added record_removed record_changed policy_weakened
    #            policy_strengthened finding_new finding_resolved finding_worse finding_better
    severity: str  # critical | warning | info | ok (ok = good news)
    text: str
    detail: dict[str, Any] = field(default_factory=dict)
    key: str = ""  # a knowledge/digest_texts.yaml key; "" = only `text` (English) is known
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "kind": self.kind, "severity": self.severity, "text": self.text,
                "detail": self.detail, "key": self.key, "params": self.params}


def _change(subject: str, kind: str, severity: str, key: str, params: dict[str, Any],
            detail: dict[str, Any] | None = None) -> Change:
    change = Change(subject, kind, severity, "", detail or {}, key, params)
    change.text = describe(change, "en")
    return change


# -- wording ---------------------------------------------------------------------------
NULL_MX_TEXT = "null MX (the domain receives no mail)"
_PREFERENCE = re.compile(r"preference (\d+)")
_RECORD_KEYS = {"SPF": "record_spf", "DMARC": "record_dmarc", "MTA-STS": "record_mta_sts",
                "TLS-RPT": "record_tls_rpt", "BIMI": "record_bimi"}
# Evidence kept with a finding change so its title can be localised (small values only).
_MAX_EVIDENCE_TEXT = 300


def record_label(label: str, lang: str) -> str:
    """A `records()` label ('SPF', 'DKIM s1', 'MX mx1.example addresses', 'PTR 192.0.2.1') in `lang`."""
    if lang != "ja":
        return label
    if label in _RECORD_KEYS:
        return digest_text(_RECORD_KEYS[label], lang)
    head, _, rest = label.partition(" ")
    if head == "DKIM" and rest:
        return digest_text("record_dkim", lang, selector=rest)
    if head == "MX":
        if not rest:
            return digest_text("record_mx_null", lang)
        if rest.endswith(" addresses"):
            return digest_text("record_mx_addresses", lang, host=rest[: -len(" addresses")])
        return digest_text("record_mx", lang, host=rest)
    if head == "PTR" and rest:
        return digest_text("record_ptr", lang, ip=rest)
    return label


def _record_value(value: Any, lang: str) -> str:
    text = str(value if value is not None else "")
    if lang == "ja":
        if text == NULL_MX_TEXT:
            text = digest_text("value_null_mx", lang)
        elif m := _PREFERENCE.fullmatch(text):
            text = digest_text("value_mx_preference", lang, n=m.group(1))
    return _short(text)


def _small_evidence(ev: Any) -> dict[str, Any]:
    if not isinstance(ev, Mapping):
        return {}
    out: dict[str, Any] = {}
    for k, v in ev.items():
        if isinstance(v, str | int | float | bool) and len(str(v)) <= _MAX_EVIDENCE_TEXT:
            out[str(k)] = v
        elif isinstance(v, list) and len(v) <= 20 and all(isinstance(x, str | int | float) for x in v):
            out[str(k)] = list(v)
    return out


def _finding_params(f: dict[str, Any], code: str, severity: str) -> dict[str, Any]:
    return {"code": code, "severity": severity, "title": str(f.get("title") or code),
            "evidence": _small_evidence(f.get("evidence"))}


def describe(change: Change, lang: str = "en") -> str:
    """The change as one line of plain text in `lang` (en | ja); not escaped for Slack."""
    if not change.key:
        return change.text
    p = change.params
    key = change.key
    if key == "listed":
        out = digest_text("listed", lang, ip=p.get("ip"), list=p.get("list"))
        if p.get("reason"):
            out += digest_text("listed_reason", lang, reason=p["reason"])
        if p.get("prev_unknown"):
            out += digest_text("listed_prev_unknown", lang)
        return out
    if key == "no_longer_used":
        lists = digest_text("list_sep", lang).join(str(x) for x in p.get("lists") or [])
        return digest_text(key, lang, ip=p.get("ip"), lists=lists)
    if key in ("record_added", "record_removed", "record_changed"):
        values = {k: _record_value(p[k], lang) for k in ("old", "new") if k in p}
        record = record_label(str(p.get("record", "")), lang)
        if lang == "ja" and record[-1:].isascii() and record[-1:].isalnum():
            record += " "  # "MXレコード mx1.example が" — a space between a name and a particle
        return digest_text(key, lang, record=record, **values)
    if key.startswith("finding_"):
        title = str(p.get("title") or p.get("code") or "")
        if lang != "en" and p.get("code"):
            import knowledge

            title = knowledge.localize_finding(str(p["code"]), lang, p.get("evidence") or {}, title, "")[0]
        sev = str(p.get("severity") or "")
        sev_key = f"severity_{sev}"
        severity = digest_text(sev_key, lang) if lang != "en" and _has_text(sev_key) else sev
        return digest_text(key, lang, severity=severity, title=title)
    return digest_text(key, lang, **p)


def _has_text(key: str) -> bool:
    from knowledge.digest_texts import load_digest_texts

    return key in load_digest_texts()


def as_dict(report: Report | dict[str, Any]) -> dict[str, Any]:
    return report.to_dict() if isinstance(report, Report) else report


# -- extraction -----------------------------------------------------------------------
def _findings(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in d.get("findings") or [] if isinstance(f, dict)]


def _group(code: str) -> str:
    return code.split(".", 1)[0]


def uncertain_groups(d: dict[str, Any]) -> set[str]:
    """Checks that could not be completed in this run (an `unknown` finding)."""
    return {_group(str(f.get("code", ""))) for f in _findings(d) if f.get("severity") == "unknown"}


def _evidence_record(d: dict[str, Any], group: str, subject: str) -> str | None:
    for f in _findings(d):
        code = str(f.get("code", ""))
        ev = f.get("evidence") or {}
        if _group(code) != group or not isinstance(ev, dict):
            continue
        rec = ev.get("record")
        if isinstance(rec, str) and rec and ev.get("target", subject) in (subject, None) and "selector" not in ev:
            return rec
    return None


def records(report: Report | dict[str, Any]) -> dict[str, str]:
    """The DNS facts a digest compares, as {label: text}: 'SPF', 'DMARC', 'DKIM s1',
    'MX mx1.example.com', 'MX mx1.example.com addresses', 'MTA-STS', 'TLS-RPT', 'BIMI', 'PTR 192.0.2.1'."""
    d = as_dict(report)
    subject = str(d.get("subject", ""))
    det = d.get("details") or {}
    out: dict[str, str] = {}
    spf = (det.get("spf") or {}) if isinstance(det.get("spf"), dict) else {}
    rec = spf.get("record") or _evidence_record(d, "spf", subject)
    if rec:
        out["SPF"] = str(rec)
    dmarc = det.get("dmarc") or {}
    rec = dmarc.get("record") if isinstance(dmarc, dict) else None
    rec = rec or _evidence_record(d, "dmarc", subject)
    if rec:
        out["DMARC"] = str(rec)
    # DKIM: per selector, the record when a finding shows it, else the key summary.
    dkim_records: dict[str, str] = {}
    for f in _findings(d):
        ev = f.get("evidence") or {}
        if _group(str(f.get("code", ""))) == "dkim" and isinstance(ev, dict) and ev.get("selector") and ev.get("record"):
            dkim_records[str(ev["selector"])] = str(ev["record"])
    dkim = det.get("dkim") or {}
    for key in (dkim.get("keys") or []) if isinstance(dkim, dict) else []:
        if not isinstance(key, dict) or not key.get("selector"):
            continue
        sel = str(key["selector"])
        if sel not in dkim_records:
            flags = [x for x in ("revoked", "testing") if key.get(x)]
            dkim_records[sel] = " ".join(str(x) for x in (key.get("type"), f"{key.get('bits')} bits", *flags) if x)
    for sel, text in dkim_records.items():
        out[f"DKIM {sel}"] = text
    mx = det.get("mx") or {}
    if isinstance(mx, dict):
        if mx.get("null_mx"):
            out["MX"] = NULL_MX_TEXT
        for host in mx.get("hosts") or []:
            if not isinstance(host, dict) or not host.get("host"):
                continue
            name = str(host["host"])
            out[f"MX {name}"] = f"preference {host.get('preference')}"
            addrs = host.get("addresses")
            if addrs:
                out[f"MX {name} addresses"] = ", ".join(sorted(str(a) for a in addrs))
    sts = det.get("mta_sts") or {}
    rec = (sts.get("record") if isinstance(sts, dict) else None) or _evidence_record(d, "mta_sts", subject)
    if rec:
        out["MTA-STS"] = str(rec)
    for group, label in (("tls_rpt", "TLS-RPT"), ("bimi", "BIMI")):
        rec = _evidence_record(d, group, subject)
        if rec:
            out[label] = rec
    ptr = det.get("ptr") or {}
    if isinstance(ptr, dict) and d.get("kind") == "ip":
        for ip, info in ptr.items():
            if isinstance(info, dict) and info.get("ptr"):
                out[f"PTR {ip}"] = ", ".join(str(x) for x in info["ptr"])
    return out


def _label_group(label: str) -> str:
    head = label.split(" ", 1)[0]
    return {"SPF": "spf", "DMARC": "dmarc", "DKIM": "dkim", "MX": "mx", "MTA-STS": "mta_sts",
            "TLS-RPT": "tls_rpt", "BIMI": "bimi", "PTR": "ptr"}.get(head, head.lower())


def dmarc_tags(record: str | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in (record or "").split(";"):
        k, sep, v = part.partition("=")
        if sep:
            tags[k.strip().lower()] = v.strip()
    return tags


_ALL = re.compile(r"(?:^|\s)([+?~-]?)all(?:\s|$)", re.IGNORECASE)


def spf_all(record: str | None) -> str | None:
    """The qualifier of the SPF `all` mechanism ('+', '?', '~', '-'), None when absent."""
    m = _ALL.search(record or "")
    if not m:
        return None
    return m.group(1) or "+"


# -- the diff -------------------------------------------------------------------------------
def _is_listing(row: dict[str, Any]) -> bool:
    return row.get("status") == "listed"


def _rows(d: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in d.get("blocklists") or []:
        if isinstance(row, dict) and row.get("zone"):
            out[(str(row["zone"]).lower(), str(row.get("target", "")))] = row
    return out


def _list_name(row: dict[str, Any]) -> str:
    name = row.get("name")
    zone = row.get("zone", "")
    return f"{name} ({zone})" if name and name != zone else str(zone)


def blocklist_changes(old: dict[str, Any], new: dict[str, Any], subject: str) -> list[Change]:
    out: list[Change] = []
    before, after = _rows(old), _rows(new)
    for key, row in after.items():
        prev = before.get(key)
        zone, target = key
        if _is_listing(row) and (prev is None or not _is_listing(prev)):
            info = bool(row.get("informational"))
            codes = ", ".join(row.get("codes") or [])
            meaning = row.get("meaning") or ""
            params = {"ip": target, "list": _list_name(row),
                      "reason": "; ".join(x for x in (codes, meaning) if x),
                      "prev_unknown": prev is not None and prev.get("status") == "unknown"}
            out.append(_change(subject, "listed", "info" if info else "critical", "listed", params,
                               {"zone": zone, "ip": target, "codes": row.get("codes") or [],
                                "delist_url": row.get("delist_url") or ""}))
        elif prev is not None and _is_listing(prev) and row.get("status") == "clean":
            out.append(_change(subject, "delisted", "ok", "delisted", {"ip": target, "list": _list_name(row)},
                               {"zone": zone, "ip": target}))
    # A listed address (or name) that is no longer part of the setup at all (MX moved away).
    checked_now = {target for _zone, target in after}
    gone: dict[str, list[str]] = {}
    for (_zone, target), row in before.items():
        if _is_listing(row) and not row.get("informational") and target not in checked_now and after:
            gone.setdefault(target, []).append(_list_name(row))
    for target, names in gone.items():
        out.append(_change(subject, "no_longer_used", "ok", "no_longer_used", {"ip": target, "lists": names},
                           {"ip": target, "lists": names}))
    return out


def record_changes(old: dict[str, Any], new: dict[str, Any], subject: str) -> list[Change]:
    out: list[Change] = []
    before, after = records(old), records(new)
    unsure = uncertain_groups(new)
    for label in sorted(set(before) | set(after)):
        a, b = before.get(label), after.get(label)
        if a == b:
            continue
        group = _label_group(label)
        name = _CHECK_NAMES.get(group, group)
        if a is None and b is not None:
            out.append(_change(subject, "record_added", "info", "record_added", {"record": label, "new": b},
                               {"record": label, "new": b}))
        elif a is not None and b is None:
            if group in unsure:
                continue  # could not see it this time: not a removal
            sev = "critical" if group in ("spf", "dmarc", "mx") and label in ("SPF", "DMARC") else "warning"
            if label.startswith("MX ") and not label.endswith("addresses"):
                sev = "warning" if any(x.startswith("MX ") and not x.endswith("addresses") for x in after) else "critical"
            out.append(_change(subject, "record_removed", sev, "record_removed", {"record": label, "old": a},
                               {"record": label, "old": a, "check": name}))
        else:
            out.append(_change(subject, "record_changed", "info", "record_changed",
                               {"record": label, "old": a or "", "new": b or ""},
                               {"record": label, "old": a, "new": b}))
    out.extend(_policy_changes(before, after, subject))
    return out


def _policy_changes(before: dict[str, str], after: dict[str, str], subject: str) -> list[Change]:
    out: list[Change] = []
    if "DMARC" in before and "DMARC" in after:
        a, b = dmarc_tags(before["DMARC"]), dmarc_tags(after["DMARC"])
        for tag in ("p", "sp"):
            if tag == "sp" and "sp" not in a and "sp" not in b:
                continue
            # sp defaults to p (RFC 7489 6.3)
            pa = a.get(tag) or (a.get("p") if tag == "sp" else None)
            pb = b.get(tag) or (b.get("p") if tag == "sp" else None)
            ra, rb = DMARC_RANK.get((pa or "").lower()), DMARC_RANK.get((pb or "").lower())
            if ra is None or rb is None or ra == rb:
                continue
            weaker = rb < ra
            out.append(_change(subject, "policy_weakened" if weaker else "policy_strengthened",
                               "critical" if weaker else "ok",
                               f"dmarc_{tag}_{'weakened' if weaker else 'strengthened'}", {"old": pa, "new": pb},
                               {"tag": tag, "old": pa, "new": pb}))
        pct_a, pct_b = _int(a.get("pct"), 100), _int(b.get("pct"), 100)
        if pct_a != pct_b and (b.get("p") or "none").lower() != "none":
            weaker = pct_b < pct_a
            out.append(_change(subject, "policy_weakened" if weaker else "policy_strengthened",
                               "warning" if weaker else "ok",
                               f"dmarc_pct_{'lowered' if weaker else 'raised'}", {"old": pct_a, "new": pct_b},
                               {"tag": "pct", "old": pct_a, "new": pct_b}))
    if "SPF" in before and "SPF" in after:
        qa, qb = spf_all(before["SPF"]), spf_all(after["SPF"])
        if qa and qb and qa != qb:
            weaker = SPF_ALL_RANK[qb] < SPF_ALL_RANK[qa]
            texts = {"old": SPF_ALL_TEXT[qa], "new": SPF_ALL_TEXT[qb]}
            out.append(_change(subject, "policy_weakened" if weaker else "policy_strengthened",
                               ("critical" if qb == "+" else "warning") if weaker else "ok",
                               f"spf_{'weakened' if weaker else 'strengthened'}", dict(texts), texts))
    return out


def _int(value: str | None, default: int) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def _finding_key(f: dict[str, Any], subject: str) -> tuple[str, str, str]:
    ev = f.get("evidence") or {}
    if not isinstance(ev, dict):
        ev = {}
    extra = ev.get("selector") or ev.get("ip") or ev.get("host") or ""
    return (str(f.get("code", "")), str(ev.get("target") or subject), str(extra))


_PROBLEM = ("critical", "warning")


def finding_changes(old: dict[str, Any], new: dict[str, Any], subject: str,
                    skip: set[str] | None = None) -> list[Change]:
    """New and resolved problems (critical/warning), and severity changes of the same finding."""
    skip = skip or set()
    before = {_finding_key(f, subject): f for f in _findings(old)}
    after = {_finding_key(f, subject): f for f in _findings(new)}
    unsure = uncertain_groups(new)
    out: list[Change] = []
    for key, f in after.items():
        code = key[0]
        if _group(code) == "blocklist" or code in skip:
            continue
        sev = str(f.get("severity"))
        prev = before.get(key)
        psev = str(prev.get("severity")) if prev else None
        if sev in _PROBLEM and (prev is None or psev not in _PROBLEM):
            out.append(_change(subject, "finding_new", sev, "finding_new", _finding_params(f, code, sev),
                               {"code": code, "severity": sev}))
        elif sev in _PROBLEM and psev in _PROBLEM and sev != psev:
            worse = IMPORTANCE[sev] < IMPORTANCE[str(psev)]
            kind = "finding_worse" if worse else "finding_better"
            out.append(_change(subject, kind, sev if worse else "ok", kind, _finding_params(f, code, sev),
                               {"code": code, "severity": sev, "was": psev}))
        elif sev in ("ok", "info") and psev in _PROBLEM:
            out.append(_change(subject, "finding_resolved", "ok", "finding_resolved",
                               _finding_params(prev or {}, code, str(psev)), {"code": code, "was": psev}))
    for key, f in before.items():
        code = key[0]
        if key in after or _group(code) == "blocklist" or code in skip:
            continue
        if str(f.get("severity")) in _PROBLEM and _group(code) not in unsure:
            out.append(_change(subject, "finding_resolved", "ok", "finding_resolved",
                               _finding_params(f, code, str(f.get("severity"))),
                               {"code": code, "was": f.get("severity")}))
    return out


def diff_reports(old: Report | dict[str, Any] | None, new: Report | dict[str, Any]) -> list[Change]:
    """Everything that changed from `old` to `new`, most important first ([] when old is None)."""
    if old is None:
        return []
    o, n = as_dict(old), as_dict(new)
    subject = str(n.get("subject") or o.get("subject") or "")
    changes = blocklist_changes(o, n, subject)
    recs = record_changes(o, n, subject)
    changes.extend(recs)
    # A removed/added record already says what its `.missing` finding would.
    skip = {f"{_label_group(str(c.detail.get('record', '')))}.missing" for c in recs
            if c.kind in ("record_removed", "record_added")}
    changes.extend(finding_changes(o, n, subject, skip))
    changes.sort(key=lambda c: IMPORTANCE.get(c.severity, 9))
    return changes


# -- status line ----------------------------------------------------------------------------
def counts(report: Report | dict[str, Any]) -> dict[str, int]:
    d = as_dict(report)
    c = {"critical": 0, "warning": 0, "unknown": 0, "listed": 0, "lists_answered": 0}
    for f in _findings(d):
        sev = str(f.get("severity"))
        if sev in c and _group(str(f.get("code", ""))) != "blocklist":
            c[sev] += 1
    for row in d.get("blocklists") or []:
        if not isinstance(row, dict):
            continue
        if row.get("status") == "listed" and not row.get("informational"):
            c["listed"] += 1
        if row.get("status") in ("listed", "clean"):
            c["lists_answered"] += 1
    return c


def status_line(report: Report | dict[str, Any], lang: str = "en") -> tuple[str, str]:
    """(worst, text): compact per-target status for the digest's bottom half, in `lang`."""
    c = counts(report)
    parts = [digest_text(f"status_{k}", lang, n=c[k]) for k in ("listed", "critical", "warning", "unknown") if c[k]]
    worst = "critical" if c["listed"] or c["critical"] else "warning" if c["warning"] else "ok"
    if not parts:
        parts.append(digest_text("status_all_ok", lang))
    if c["lists_answered"] and not c["listed"]:
        parts.append(digest_text("status_clean", lang, n=c["lists_answered"]))
    return worst, digest_text("list_sep", lang).join(parts)


def _short(text: str, limit: int = 140) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_EVIDENCE_KEYS = ("target", "selector", "ip", "host", "record", "policy", "role")
_DETAIL_KEYS = ("spf", "dmarc", "dkim", "mx", "mta_sts", "ptr")


def slim_report(report: Report | dict[str, Any]) -> dict[str, Any]:
    """The part of a report the next diff needs (snapshots stay small).

    Keeps findings (code, severity, title, identifying evidence), blocklist rows
    that are listed or unknown (absent = not listed), and the record details.
    """
    d = as_dict(report)
    findings = []
    for f in _findings(d):
        ev = f.get("evidence") or {}
        findings.append({
            "code": f.get("code"),
            "severity": f.get("severity"),
            "title": f.get("title"),
            "evidence": {k: ev[k] for k in _EVIDENCE_KEYS if isinstance(ev, dict) and k in ev},
        })
    rows = [
        {k: row[k] for k in ("zone", "target", "status", "codes", "meaning", "delist_url", "name", "informational")
         if k in row}
        for row in d.get("blocklists") or []
        if isinstance(row, dict) and row.get("status") in ("listed", "unknown")
    ]
    details = d.get("details") or {}
    return {
        "kind": d.get("kind"),
        "subject": d.get("subject"),
        "checked_at": d.get("checked_at"),
        "findings": findings,
        "blocklists": rows,
        "lists_answered": counts(d)["lists_answered"],
        "details": {k: details[k] for k in _DETAIL_KEYS if isinstance(details, dict) and k in details},
    }


def checked(report: Report | dict[str, Any]) -> bool:
    """False when nothing could be determined (every finding unknown, no list answered)."""
    d = as_dict(report)
    found = _findings(d)
    if any(f.get("severity") != "unknown" for f in found):
        return True
    return any(isinstance(r, dict) and r.get("status") in ("listed", "clean") for r in d.get("blocklists") or [])
