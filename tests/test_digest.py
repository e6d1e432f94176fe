"""Digests: change detection (pure), Block Kit limits, and the whole path on real
parts — NSD zones edited between runs, SQLite and PostgreSQL, posting to a local
fake Slack Web API through SLACK_API_URL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import bot.digest as digest
from bot.storage import DigestJob, Store, Watch
from handlers.digest_diff import diff_reports, records, slim_report, spf_all, status_line
from tests import test_storage_backends as backends

db_url = backends.db_url  # fixtures: SQLite and PostgreSQL
store = backends.store

ZONE = "digest-a.example"
ZONE_FILE = Path(__file__).parent / "fixtures" / "zones" / f"{ZONE}.zone"


# -- pure diff --------------------------------------------------------------------------------
def _rep(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"kind": "domain", "subject": "x.example", "findings": [], "blocklists": [],
                            "details": {}}
    base.update(kw)
    return base


def _dmarc(rec: str) -> dict[str, Any]:
    return {"dmarc": {"record": rec}, "spf": {"record": "v=spf1 -all"}}


def test_policy_weakened_and_strengthened() -> None:
    old = _rep(details=_dmarc("v=DMARC1; p=reject"))
    new = _rep(details={"dmarc": {"record": "v=DMARC1; p=none"}, "spf": {"record": "v=spf1 ~all"}})
    kinds = {(c.kind, c.severity) for c in diff_reports(old, new)}
    assert ("policy_weakened", "critical") in kinds  # DMARC reject -> none
    assert ("policy_weakened", "warning") in kinds  # SPF -all -> ~all
    back = diff_reports(new, old)
    assert {c.kind for c in back} >= {"policy_strengthened"}
    assert all(c.severity == "ok" for c in back if c.kind == "policy_strengthened")
    assert spf_all("v=spf1 include:x all") == "+" and spf_all("v=spf1 ?all") == "?" and spf_all("v=spf1") is None


def test_listed_and_delisted_need_real_answers() -> None:
    clean = {"zone": "zen.spamhaus.org", "target": "192.0.2.1", "status": "clean", "name": "Spamhaus ZEN"}
    listed = dict(clean, status="listed", codes=["127.0.0.4"], meaning="XBL")
    unknown = dict(clean, status="unknown")
    (c,) = diff_reports(_rep(blocklists=[clean]), _rep(blocklists=[listed]))
    assert c.kind == "listed" and c.severity == "critical" and "192.0.2.1" in c.text and "Spamhaus ZEN" in c.text
    (c,) = diff_reports(_rep(blocklists=[listed]), _rep(blocklists=[clean]))
    assert c.kind == "delisted"
    assert diff_reports(_rep(blocklists=[listed]), _rep(blocklists=[unknown])) == []  # not a delisting
    (c,) = diff_reports(_rep(blocklists=[]), _rep(blocklists=[listed]))  # new MX IP, listed
    assert c.kind == "listed"


def test_records_removed_only_when_seen() -> None:
    old = _rep(details={"dmarc": {"record": "v=DMARC1; p=reject"},
                        "mx": {"hosts": [{"host": "mx1.x.example", "preference": 10, "addresses": ["192.0.2.1"]},
                                         {"host": "mx2.x.example", "preference": 20, "addresses": ["192.0.2.2"]}]}})
    gone = _rep(details={"mx": {"hosts": [{"host": "mx1.x.example", "preference": 10,
                                            "addresses": ["192.0.2.9"]}]}},
                findings=[{"code": "dmarc.missing", "severity": "warning", "title": "no DMARC",
                           "evidence": {"target": "x.example"}}])
    changes = diff_reports(old, gone)
    texts = [c.text for c in changes]
    assert any(c.kind == "record_removed" and c.detail["record"] == "DMARC" and c.severity == "critical"
               for c in changes)
    assert any("MX mx2.x.example record removed" in t for t in texts)
    assert any(c.kind == "record_changed" and "192.0.2.1 -> 192.0.2.9" in c.text for c in changes)
    assert not any(c.kind == "finding_new" and c.detail["code"] == "dmarc.missing" for c in changes)  # said once
    # a timeout is not a removal
    unsure = _rep(details={"mx": old["details"]["mx"]},
                  findings=[{"code": "dmarc.unknown", "severity": "unknown", "title": "DMARC: timeout"}])
    assert diff_reports(old, unsure) == []


def test_findings_new_resolved_and_severity() -> None:
    f = {"code": "spf.too_many_lookups", "severity": "warning", "title": "11 lookups", "evidence": {}}
    g = {"code": "requirements.gmail", "severity": "ok", "title": "meets Gmail", "evidence": {}}
    g_bad = dict(g, severity="critical", title="fails Gmail")
    changes = diff_reports(_rep(findings=[g]), _rep(findings=[f, g_bad]))
    assert {(c.kind, c.severity) for c in changes} == {("finding_new", "warning"), ("finding_new", "critical")}
    assert changes[0].severity == "critical"  # what broke first
    (c,) = diff_reports(_rep(findings=[f]), _rep(findings=[]))
    assert c.kind == "finding_resolved"
    (c,) = diff_reports(_rep(findings=[f]), _rep(findings=[dict(f, severity="critical")]))
    assert c.kind == "finding_worse"
    unknown = {"code": "dkim.unknown", "severity": "unknown", "title": "timeout"}
    assert diff_reports(_rep(findings=[]), _rep(findings=[unknown])) == []
    assert diff_reports(None, _rep()) == []


def test_slim_snapshot_keeps_what_diff_needs() -> None:
    full = _rep(details=_dmarc("v=DMARC1; p=reject"),
                blocklists=[{"zone": "a", "target": "192.0.2.1", "status": "clean"},
                            {"zone": "b", "target": "192.0.2.1", "status": "listed"}],
                findings=[{"code": "x.y", "severity": "warning", "title": "t", "detail": "long" * 100,
                           "evidence": {"target": "x.example", "junk": "z" * 1000}}])
    slim = slim_report(full)
    assert len(json.dumps(slim)) < 1000
    assert diff_reports(slim, full) == []
    assert records(slim) == records(full)
    assert status_line(full)[0] == "critical"


# -- rendering limits --------------------------------------------------------------------------------
def _watch(i: int, target: str | None = None) -> Watch:
    now = datetime.now(UTC)
    return Watch(i, "T1", "C1", target or f"t{i}.example", "daily 09:00", "Asia/Tokyo", [], now, None, now)


def test_long_digest_is_split_within_slack_limits() -> None:
    from handlers.digest_diff import Change
    from tests.test_storage_backends import fake_report

    watches = [_watch(i, f"{'long-label-' * 5}{i}.example") for i in range(300)]
    results = []
    for w in watches:
        r = digest.TargetResult(w, fake_report(w.target, "critical"), True,
                                previous_at=datetime.now(UTC) - timedelta(days=1))
        r.changes = [Change(w.target, "record_changed", "info", "SPF changed: " + "v=spf1 " * 60)
                     for _ in range(3)]
        results.append(r)
    job = DigestJob(1, "T1", "C1", datetime.now(UTC), "scheduled", watches, "tok")
    messages = digest.render_digest(job, results)
    assert len(messages) > 3
    buttons = 0
    for m in messages:
        assert len(m["blocks"]) <= 50 and m["text"]
        total = 0
        for b in m["blocks"]:
            text = (b.get("text") or {}).get("text", "")
            assert len(text) <= 3000
            total += len(text)
            acc = b.get("accessory")
            if acc:
                assert acc["action_id"] == "mailcheck_recheck" and acc["value"].endswith(".example")
                buttons += 1
        assert total <= 12000
    assert buttons >= 300
    assert messages[-1]["blocks"][-1]["elements"][0]["text"].startswith("Part ")


def test_quiet_run_is_short() -> None:
    from tests.test_storage_backends import fake_report

    watches = [_watch(i) for i in range(200)]
    results = []
    for w in watches:
        rep = fake_report(w.target)
        rep.findings = []
        results.append(digest.TargetResult(w, rep, True, previous_at=datetime.now(UTC) - timedelta(days=1)))
    job = DigestJob(1, "T1", "C1", datetime.now(UTC), "scheduled", watches, "tok")
    (msg,) = digest.render_digest(job, results)
    assert len(msg["blocks"]) <= 4
    assert "No changes since" in json.dumps(msg) and "OK (200)" in json.dumps(msg)  # OK targets folded


# -- end to end on real parts ----------------------------------------------------------------------------
class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/api/"

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.content_type == "application/json" else dict(await request.post())
        self.calls.append({"method": request.match_info["method"], "auth": request.headers.get("Authorization"),
                           "body": body})
        return web.json_response({"ok": True, "channel": body.get("channel"), "ts": f"{len(self.calls)}.0001"})

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["method"] == "chat.postMessage"
                and (channel is None or c["body"]["channel"] == channel)]


@pytest.fixture
async def fake_slack(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeSlack]:
    srv = FakeSlack()
    await srv.start()
    monkeypatch.setenv("SLACK_API_URL", srv.url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-env-token")
    monkeypatch.delenv("SLACK_CLIENT_ID", raising=False)
    yield srv
    await srv.stop()


def _text(call: dict[str, Any]) -> str:
    return json.dumps(call["body"]["blocks"], ensure_ascii=False)


async def test_digest_reports_zone_changes_end_to_end(
    store: Store, fake_slack: FakeSlack, dns_world: Any
) -> None:
    original = ZONE_FILE.read_text()
    dns_world.write_zone(ZONE, original)
    try:
        past = datetime.now(UTC) - timedelta(days=2)
        await store.add_watch("T1", "C1", ZONE, "daily 09:00", "Asia/Tokyo", ["sel1"], now=past)
        await store.add_watch("T1", "C1", "good.example", "daily 09:00", "Asia/Tokyo", now=past)

        # 1st digest: baseline
        stats = await digest.run_due(store, resolver_factory=lambda: dns_world.resolver(timeout=1.0))
        assert stats.posted == 1, stats
        (first,) = fake_slack.posts("C1")
        assert first["auth"] == "Bearer xoxb-env-token"
        assert "baseline" in _text(first) and "OK (2): digest-a.example, good.example" in _text(first)

        # overnight: DMARC weakened, SPF softened, mx2 removed, mx1 moved to a listed IP
        changed = (original.replace("p=reject", "p=none").replace("-all", "~all")
                   .replace("@ IN MX 20 mx2\n", "").replace("mx1 IN A 192.0.2.10", "mx1 IN A 203.0.113.4"))
        dns_world.write_zone(ZONE, changed)
        # another workspace watching the same domain starts from its own baseline
        await store.add_watch("T2", "C1", ZONE, now=past)

        stats = await digest.run_now(store, "T1", "C1", resolver=dns_world.resolver(timeout=1.0))
        assert stats.posted == 1
        second = fake_slack.posts("C1")[-1]
        text = _text(second)
        assert "What changed" in text
        assert "203.0.113.4 newly listed on" in text and "zen.spamhaus.org" in text
        assert "DMARC policy weakened: p=reject -&gt; p=none" in text
        assert "SPF weakened: -all -&gt; ~all" in text
        assert "MX mx2.digest-a.example record removed" in text
        assert '"value": "digest-a.example"' in text
        # changes come before the status lines, and good.example is unchanged
        assert text.index("What changed") < text.index("Status")
        assert "good.example" not in text.split("Status")[0]

        t2 = await digest.run_now(store, "T2", None, resolver=dns_world.resolver(timeout=1.0))
        assert t2.posted == 1
        assert "baseline" in _text(fake_slack.posts("C1")[-1])

        # nothing changed since: a short quiet message
        await digest.run_now(store, "T1", "C1", resolver=dns_world.resolver(timeout=1.0))
        quiet = fake_slack.posts("C1")[-1]
        assert "No changes since" in _text(quiet) and "What changed" not in _text(quiet)

        # repaired: delisting and strengthening are reported as good news
        dns_world.write_zone(ZONE, original)
        await digest.run_now(store, "T1", "C1", resolver=dns_world.resolver(timeout=1.0))
        fixed = _text(fake_slack.posts("C1")[-1])
        assert "203.0.113.4 is no longer used (it was listed on" in fixed and "DMARC policy strengthened" in fixed
        assert "MX mx2.digest-a.example record added" in fixed
    finally:
        dns_world.write_zone(ZONE, original)


async def test_installed_token_wins_and_errors_are_final(store: Store, fake_slack: FakeSlack) -> None:
    from slack_sdk.oauth.installation_store import Installation

    await store.installation_store().async_save(
        Installation(app_id="A1", team_id="T7", user_id="U1", bot_token="xoxb-installed", bot_id="B1"))
    rec_calls: list[str] = []
    post = digest.slack_poster(store)
    ts = await post("T7", "C5", {"text": "hi", "blocks": []})
    rec_calls.append(ts or "")
    assert fake_slack.calls[-1]["auth"] == "Bearer xoxb-installed" and ts
    ts = await post("T8", "C5", {"text": "hi", "blocks": []})
    assert fake_slack.calls[-1]["auth"] == "Bearer xoxb-env-token"


# -- language --------------------------------------------------------------------------------------------
def _block_texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every visible text of the blocks: section/header text, context elements, button labels."""
    out: list[str] = []
    for b in blocks:
        for obj in (b.get("text"), (b.get("accessory") or {}).get("text"), *(b.get("elements") or [])):
            if isinstance(obj, dict) and "text" in obj:
                out.append(str(obj["text"]))
    return out


_EN_TEMPLATE_WORDS = ("What changed", "Status", "Re-check", "newly listed", "record removed", "weakened",
                      "No changes since", "baseline", "Checked ", "watched target", "could not be checked",
                      "new warning", "new critical", "resolved:", "OK (", "strengthened", "record added")


async def test_digest_lang_channel_then_workspace_then_env(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILCHECK_LANG", raising=False)
    assert await digest.digest_lang(store, "T1", "C1") == "en"
    monkeypatch.setenv("MAILCHECK_LANG", "ja")
    assert await digest.digest_lang(store, "T1", "C1") == "ja"
    await store.set_setting("T1", "team", "lang", "en")
    assert await digest.digest_lang(store, "T1", "C1") == "en"  # the workspace beats the environment
    await store.set_setting("T1", "channel:C1", "lang", "ja")
    assert await digest.digest_lang(store, "T1", "C1") == "ja"  # the channel beats the workspace
    assert await digest.digest_lang(store, "T1", "C2") == "en"
    await store.set_setting("T1", "user:U1", "lang", "ja")  # a user's own language is not the channel's
    assert await digest.digest_lang(store, "T2", "C1") == "ja"  # T2: nothing set -> MAILCHECK_LANG


def test_ja_render_has_no_english_left() -> None:
    from handlers.digest_diff import describe
    from tests.test_storage_backends import fake_report

    old = _rep(details={"dmarc": {"record": "v=DMARC1; p=reject; sp=reject; pct=100"},
                        "spf": {"record": "v=spf1 -all"}, "mx": {"hosts": [{"host": "mx2.x.example",
                                                                          "preference": 20}]}},
               blocklists=[{"zone": "b.example", "target": "192.0.2.9", "status": "listed"}],
               findings=[{"code": "dmarc.policy_none", "severity": "warning", "title": "DMARC only monitors",
                          "evidence": {"target": "x.example"}}])
    new = _rep(details={"dmarc": {"record": "v=DMARC1; p=quarantine; sp=none; pct=50"},
                        "spf": {"record": "v=spf1 ?all"}, "mx": {"null_mx": True}},
               blocklists=[{"zone": "zen.spamhaus.org", "target": "192.0.2.1", "status": "listed",
                            "codes": ["127.0.0.2"]}],
               findings=[{"code": "spf.too_many_lookups", "severity": "warning", "title": "11 lookups",
                          "evidence": {"target": "x.example"}}])
    changes = diff_reports(old, new) + diff_reports(new, old)
    assert {c.kind for c in changes} >= {"listed", "no_longer_used", "record_added", "record_removed",
                                         "record_changed", "policy_weakened", "policy_strengthened",
                                         "finding_new", "finding_resolved"}
    for c in changes:
        ja = describe(c, "ja")
        assert describe(c, "en") == c.text
        assert "{" not in ja and not any(w in ja for w in _EN_TEMPLATE_WORDS), ja
        assert any("\u3040" <= ch <= "\u30ff" for ch in ja), ja  # kana: a Japanese sentence
    texts = {describe(c, "ja") for c in changes}
    assert "MXレコードが追加されました: Null MX（このドメインはメールを受信しません）" in texts
    assert "DMARCの適用率（pct）が下がりました: 100 → 50" in texts
    assert "解決済み: x.example のDMARCは監視のみ（p=none）です" in texts  # knowledge.localize_finding

    watches = [_watch(i) for i in range(3)]
    reports = [fake_report(w.target, "critical") for w in watches]
    results = [digest.TargetResult(watches[0], reports[0], True, changes,
                                   previous_at=datetime.now(UTC) - timedelta(days=1)),
               digest.TargetResult(watches[1], reports[1], True, baseline=True),
               digest.TargetResult(watches[2], None, False)]
    job = DigestJob(1, "T1", "C1", datetime.now(UTC), "scheduled", watches, "tok")
    (msg,) = digest.render_digest(job, results, lang="ja")
    body = json.dumps(msg, ensure_ascii=False)
    assert "メール配信ダイジェスト: 監視対象 3件" in body and "*変更点*" in body and "*現在の状態*" in body
    assert "再チェック" in body and "初回のダイジェスト" in body and "確認できませんでした（DNSの応答がありません）" in body
    assert not any("{" in x or "}" in x for x in _block_texts(msg["blocks"]))
    assert not any(w in body for w in _EN_TEMPLATE_WORDS), body
    assert msg["text"].startswith("メール配信ダイジェスト")
    # split messages: the part labels too
    many = [digest.TargetResult(w, fake_report(w.target, "critical"), True) for w in
            [_watch(i, f"{'long-label-' * 5}{i}.example") for i in range(300)]]
    pages = digest.render_digest(DigestJob(1, "T1", "C1", datetime.now(UTC), "scheduled",
                                           [r.watch for r in many], "tok"), many, lang="ja")
    assert len(pages) > 1 and pages[-1]["blocks"][-1]["elements"][0]["text"].endswith("件目")
    assert "件目）" in pages[1]["text"]


async def test_ja_digest_end_to_end(store: Store, fake_slack: FakeSlack, dns_world: Any,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`/mailcheck lang ja workspace` (team setting) -> the channel's digest is in Japanese;
    a channel set to en keeps English."""
    monkeypatch.delenv("MAILCHECK_LANG", raising=False)
    original = ZONE_FILE.read_text()
    dns_world.write_zone(ZONE, original)
    try:
        await store.set_setting("T1", "team", "lang", "ja")
        await store.set_setting("T1", "channel:C9", "lang", "en")
        past = datetime.now(UTC) - timedelta(days=2)
        await store.add_watch("T1", "C1", ZONE, "daily 09:00", "Asia/Tokyo", ["sel1"], now=past)
        await store.add_watch("T1", "C1", "good.example", "daily 09:00", "Asia/Tokyo", now=past)
        await store.add_watch("T1", "C9", ZONE, "daily 09:00", "Asia/Tokyo", ["sel1"], now=past)

        stats = await digest.run_due(store, resolver_factory=lambda: dns_world.resolver(timeout=1.0))
        assert stats.posted == 2, stats
        first = _text(fake_slack.posts("C1")[0])
        assert "初回のダイジェスト" in first and "問題なし（2件）: digest-a.example, good.example" in first
        assert "baseline" in _text(fake_slack.posts("C9")[0])

        changed = (original.replace("p=reject", "p=none").replace("-all", "~all")
                   .replace("@ IN MX 20 mx2\n", "").replace("mx1 IN A 192.0.2.10", "mx1 IN A 203.0.113.4"))
        dns_world.write_zone(ZONE, changed)
        stats = await digest.run_now(store, "T1", None, resolver=dns_world.resolver(timeout=1.0))
        assert stats.posted == 2
        second = fake_slack.posts("C1")[-1]
        text = _text(second)
        assert second["body"]["text"].startswith("メール配信ダイジェスト: 監視対象 2件")
        assert "メール配信ダイジェスト" in text and "*変更点*" in text and "*現在の状態*" in text
        assert "203.0.113.4 がブロックリスト" in text and "に新たに掲載されました" in text
        assert "DMARCポリシーが弱まりました: p=reject → p=none" in text
        assert "SPFポリシーが弱まりました: -all → ~all" in text
        assert "MXレコード mx2.digest-a.example が削除されました" in text
        assert "のDMARCは監視のみ（p=none）です" in text  # a finding title from the knowledge base
        assert '"text": "再チェック"' in text
        assert text.index("*変更点*") < text.index("*現在の状態*")
        assert not any(w in text for w in _EN_TEMPLATE_WORDS), text
        assert not any("{" in x or "}" in x for x in _block_texts(second["body"]["blocks"]))  # no {placeholder}
        english = _text(fake_slack.posts("C9")[-1])  # the channel override
        assert "What changed" in english and "DMARC policy weakened: p=reject -&gt; p=none" in english

        await digest.run_now(store, "T1", "C1", resolver=dns_world.resolver(timeout=1.0))
        quiet = _text(fake_slack.posts("C1")[-1])
        assert "以降、変更はありません。" in quiet and "*変更点*" not in quiet

        dns_world.write_zone(ZONE, original)
        await digest.run_now(store, "T1", "C1", resolver=dns_world.resolver(timeout=1.0))
        fixed = _text(fake_slack.posts("C1")[-1])
        assert "203.0.113.4 は使われなくなりました" in fixed and "DMARCポリシーが強化されました" in fixed
        assert "MXレコード mx2.digest-a.example が追加されました" in fixed
    finally:
        dns_world.write_zone(ZONE, original)


async def test_a_digest_run_has_a_dns_query_budget(dns_world: Any) -> None:
    # The shared digest resolver has no deadline, so it gets a budget per audited target:
    # a run can't ask without end, and what it could not ask is `unknown`, never a verdict.
    resolver = dns_world.resolver()
    resolver.max_queries = None
    now = datetime.now(UTC)
    watches = [
        Watch(id=i, team_id="T1", channel_id="C1", target=t, kind="domain", schedule="daily 09:00", tz="UTC",
              selectors=[], next_run_at=now, last_run_at=None, created_at=now, created_by=None)
        for i, t in enumerate(["good.example", "weak.example"], 1)
    ]
    audits = await digest.audit_targets(watches, resolver)
    assert resolver.max_queries == 2 * 2000
    assert resolver.stats.lookups <= resolver.max_queries
    assert all(report is not None for report, _err in audits.values())
