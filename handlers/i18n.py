"""Put a report's user-visible texts into the chosen language.

Handlers write English titles/details with the specifics of the case. For
Japanese, the knowledge base's templates (filled from each finding's evidence)
replace them; for both languages, findings without remediation ids get the
ones the knowledge base names for their code.
"""

from __future__ import annotations

import dataclasses

from handlers.model import Finding, Report


def localized_copy(report: Report, lang: str) -> Report:
    """`report` in `lang`, leaving `report` as it was (a cached report is shown again in
    the other language). Copies only what localisation replaces: the findings, list
    rows and bounce records (one level deep; localisation assigns new titles, details,
    evidence dicts and remediation lists, never edits them in place). The rest (details,
    the SPF tree) is shared, not deep-copied: a deep copy of a large report was seconds
    of CPU."""
    copy = dataclasses.replace(
        report,
        findings=[dataclasses.replace(f) for f in report.findings],
        blocklists=[dataclasses.replace(b) for b in report.blocklists],
        bounces=[dataclasses.replace(b) for b in report.bounces],
        notes=list(report.notes),
    )
    return localize_report(copy, lang)


def localize_report(report: Report, lang: str) -> Report:
    import knowledge

    analysed_in = report.lang
    report.lang = lang
    if lang == "ja":
        _localize_list_meanings(report)  # before the findings that quote them
    # Summaries (a message's verdict) quote other findings' titles: localise them last,
    # from the already localised titles.
    summaries = [f for f in report.findings if isinstance(f.evidence.get("causes"), list)]
    for f in [*(f for f in report.findings if f not in summaries), *summaries]:
        text = knowledge.finding_text(f.code, lang)
        if text is not None and not f.remediation:
            f.remediation = list(text.remediation)
        if lang != "en":
            if f in summaries:
                _requote_causes(report, f)
            f.title, f.detail = knowledge.localize_finding(f.code, lang, f.evidence, f.title, f.detail)
    if lang != "en":
        _localize_blocklist_rows(report, lang)
        for b in report.bounces:
            if b.explanations.get(lang):
                b.explanation = b.explanations[lang]  # the engine's own text, with the case's notes
                continue
            if analysed_in == lang and b.explanation:
                continue  # the engine already wrote it in this language, with the case's own notes
            info = knowledge.reason_info(b.reason)
            if info is not None:
                b.explanation = info.explain.ja if lang == "ja" else info.explain.en
    else:
        for b in report.bounces:
            if b.explanations.get("en"):
                b.explanation = b.explanations["en"]
    return report


def _requote_causes(report: Report, summary: Finding) -> None:
    """Point a summary's quoted causes at the localised titles of the findings they name."""
    titles: dict[tuple[str, str], str] = {}
    for f in report.findings:
        if f is not summary:
            target = str(f.evidence.get("target") or f.evidence.get("ip") or "")
            titles.setdefault((f.code, target), f.title)
    causes = [dict(c) for c in summary.evidence["causes"] if isinstance(c, dict)]
    for c in causes:
        c["title"] = titles.get((str(c.get("code", "")), str(c.get("target", ""))), c.get("title", ""))
    summary.evidence = {**summary.evidence, "causes": causes}
    if causes and "value" in summary.evidence:
        summary.evidence["value"] = causes[0]["title"]


# Unknown kinds whose English detail (server, rcode, the operator's error meaning)
# is worth keeping after the translated reason, e.g. for a support ticket.
_KEEP_DETAIL = {"timeout", "refused", "refused_public_resolver", "error_code", "failed"}


def _localize_blocklist_rows(report: Report, lang: str) -> None:
    from knowledge.detail_phrases import to_japanese
    from knowledge.engine_texts import engine_text, load_engine_texts

    known = load_engine_texts()
    for row in report.blocklists:
        if row.status != "unknown" or f"why_{row.why_kind}" not in known:
            continue
        text = engine_text(f"why_{row.why_kind}", lang, codes=", ".join(row.codes))
        if row.why_kind in _KEEP_DETAIL and row.why_unknown:
            detail = row.why_unknown
            if row.why_kind == "timeout":  # the reason already says it; keep which server
                detail = detail.removeprefix("no answer (timeout): ")
            text = f"{text} — {to_japanese(detail) if lang == 'ja' else detail}"
        row.why_unknown = text


def _list_meaning_ja(zone: str, codes: list[str]) -> str | None:
    """A list's return codes explained in Japanese, from the knowledge base; None when
    the list or a code has no Japanese text (the English meaning then stays)."""
    from knowledge.blocklists import load_blocklists

    entry = load_blocklists().get(zone)
    if entry is None or not codes or entry.score:
        return None  # unknown list, or a score (its meaning is a number, not a code)
    parts: list[str] = []
    for code in codes:
        try:
            matched = entry.match(code)
        except ValueError:
            return None
        if not matched:
            parts.append(f"掲載（応答コード {code}）")
            continue
        for rc in matched:
            if not rc.meaning_ja:
                return None
            parts.append(rc.meaning_ja)
    return "; ".join(dict.fromkeys(parts))


def _localize_list_meanings(report: Report) -> None:
    for row in report.blocklists:
        if row.status != "unknown" and row.meaning:
            ja = _list_meaning_ja(row.zone, list(row.codes))
            if ja:
                row.meaning = ja
    for f in report.findings:
        ev = f.evidence
        if ev.get("zone") and ev.get("codes") and ev.get("meaning") and isinstance(ev["codes"], list):
            ja = _list_meaning_ja(str(ev["zone"]), [str(c) for c in ev["codes"]])
            if ja:
                f.evidence = {**ev, "meaning": ja}
        elif isinstance(ev.get("hits"), list) and ev.get("meaning"):
            # One finding for several lists (a link domain listed on DBL and URIBL): each
            # list's codes are explained on their own, all or none in Japanese.
            parts = [_list_meaning_ja(str(h.get("zone", "")), [str(c) for c in h.get("codes", [])])
                     for h in ev["hits"] if isinstance(h, dict)]
            if parts and all(parts):
                f.evidence = {**ev, "meaning": "; ".join(dict.fromkeys(p for p in parts if p))}
