"""Block Kit rendering stays within Slack's limits, whatever the report."""

from __future__ import annotations

import json
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.render_blocks import ActionValues, render_report, render_text
from handlers.model import BlocklistResult, BounceRecord, Finding, Report


def huge_report() -> Report:
    r = Report(kind="domain", subject="x" * 60 + ".example")
    r.notes.append("note <!channel> " * 50)
    sev = ["critical", "warning", "ok", "info", "unknown"]
    for i in range(400):
        r.add(Finding(code="spf.missing", severity=sev[i % 5], title=f"Finding {i} <!channel> " + "t" * 200,  # type: ignore[arg-type]
                      detail="detail & more " * 600, evidence={"i": i, "blob": "e" * 3000},
                      remediation=["spf.add_record", "dmarc.publish"] if i % 2 else ["blocklist.delist"]))
    for i in range(600):
        r.blocklists.append(BlocklistResult(zone=f"list{i}.example", target=f"192.0.2.{i % 250}",
                                            status=["listed", "clean", "unknown"][i % 3],  # type: ignore[arg-type]
                                            codes=["127.0.0.2"], meaning="spam source " * 20,
                                            delist_url="https://delist.example/x", reason_text="r" * 500,
                                            why_unknown="timeout"))
    for i in range(60):
        r.bounces.append(BounceRecord(recipient=f"user{i}@gmail.com", status="5.7.26", reply_code=550,
                                      reason="authfailure", provider="google", hard=True,
                                      diagnostic="550-5.7.26 blocked\n" * 300, remediation=["bounce.authfailure"]))
    r.spf = {"result": "fail", "record": "v=spf1 " + "include:x.example " * 300,
             "trace": [{"step": i, "text": "s" * 300} for i in range(400)]}
    r.details["blob"] = "z" * 50_000
    return r


def check_limits(messages: list[Any]) -> None:
    for msg in messages:
        blocks = msg.block_dicts()
        assert 1 <= len(blocks) <= 50
        assert len(msg.text) <= 3000
        total = len(json.dumps(blocks, ensure_ascii=False))
        assert total <= 12_000, total
        for b in blocks:
            parsed = Block.parse(b)
            assert parsed is not None
            parsed.to_dict()  # slack_sdk's own validation (raises on violations)
            if b["type"] == "section":
                assert len(b["text"]["text"]) <= 3000
            if b["type"] == "header":
                assert len(b["text"]["text"]) <= 150
            if b["type"] == "context":
                assert len(b["elements"]) <= 10
            if b["type"] == "actions":
                assert all(len(e["value"]) <= 2000 for e in b["elements"])
        assert "<!channel>" not in json.dumps(blocks)  # untrusted text is escaped


@pytest.mark.parametrize("lang", ["en", "ja"])
@pytest.mark.parametrize("detailed", [False, True])
def test_huge_report_splits_within_limits(lang: str, detailed: bool) -> None:
    values = ActionValues(recheck='{"c":"domain x"}', details='{"r":"1"}', lang='{"l":"ja"}')
    msgs = render_report(huge_report(), lang, actions=values, detailed=detailed, max_messages=4)
    assert 2 <= len(msgs) <= 4
    check_limits(msgs)
    last = json.dumps(msgs[-1].block_dicts(), ensure_ascii=False)
    assert ("more item" in last) or ("省略" in last)  # truncated with a pointer
    if not detailed:
        assert "mailcheck_recheck" in last and "mailcheck_details" in last and "mailcheck_lang" in last
    first = msgs[0].block_dicts()
    assert first[0]["type"] == "header"


def test_bounce_kinds_lead_with_bounces() -> None:
    r = Report(kind="bounce", subject="pasted text")
    r.bounces.append(BounceRecord(recipient="a@gmail.com", status="5.7.26", reply_code=550, reason="authfailure",
                                  provider="google", hard=True, diagnostic="550 5.7.26 unauthenticated",
                                  remediation=["bounce.authfailure"], explanation="SPF/DKIM failed."))
    r.add(Finding(code="spf.missing", severity="critical", title="No SPF record", remediation=["spf.add_record"]))
    msgs = render_report(r, "en")
    check_limits(msgs)
    text = json.dumps(msgs[0].block_dicts(), ensure_ascii=False)
    assert text.index("a@gmail.com") < text.index("No SPF record")
    assert "How to fix" in text


def test_severity_first_and_remediation_once() -> None:
    r = Report(kind="domain", subject="example.com")
    r.add(Finding(code="dmarc.no_rua", severity="info", title="INFO-ONE"))
    r.add(Finding(code="spf.ok", severity="ok", title="OK-ONE"))
    r.add(Finding(code="spf.missing", severity="critical", title="CRIT-ONE", remediation=["spf.add_record"]))
    r.add(Finding(code="spf.permissive_all", severity="warning", title="WARN-ONE", remediation=["spf.add_record"]))
    msgs = render_report(r, "en")
    assert len(msgs) == 1
    text = json.dumps(msgs[0].block_dicts(), ensure_ascii=False)
    assert text.index("CRIT-ONE") < text.index("WARN-ONE") < text.index("INFO-ONE") < text.index("OK-ONE")
    assert text.count("How to fix") == 1 and "see above" in text


def test_render_text_limits() -> None:
    msgs = render_text("x" * 200_000 + "\n<!here>", header="h" * 400)
    check_limits(msgs)
    assert len(msgs) == 1
