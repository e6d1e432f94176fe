"""Fixed texts of the Slack app (en + ja) and the button value codec."""

from __future__ import annotations

import json
from typing import Any

HELP = {
    "en": """*mailcheck* — why mail lands in spam or bounces, and what to fix
• `/mailcheck example.com` — audit a domain: SPF, DKIM, DMARC, MX, PTR, MTA-STS, TLS-RPT, BIMI, DNSSEC, blocklists and the Gmail / Yahoo / Microsoft sender requirements
• `/mailcheck domain example.com selector=s1 ip=192.0.2.1` — also check DKIM selectors and your sending IPs
• `/mailcheck ip 192.0.2.1 198.51.100.7` — PTR, forward-confirmed DNS and blocklists of IPs
• `/mailcheck spf example.com 192.0.2.1` — would this IP pass SPF for the domain? (with the evaluation path)
• `/mailcheck bounce` · `/mailcheck message` — how to have a bounce or a spam-foldered message explained
• `/mailcheck watch example.com daily 09:00 tz=Asia/Tokyo` — a digest of what changed (`weekdays 09:00`, `weekly mon 09:00`) · `unwatch example.com` · `watches` · `digest now`
• `/mailcheck reports` — summarise the latest DMARC / TLS report file shared here (or just share one: xml, gz, zip, json or the report email)
• `/mailcheck logs` — summarise the latest mail log shared here, with a chart per hour (or just share one: Postfix, Exim or Sendmail, plain or .gz; addresses are masked)
• `/mailcheck lang ja` — 日本語で表示 (`lang ja workspace` sets the workspace default)
• `/mailcheck autodetect on|off` — answer bounces pasted in this channel automatically (on by default)
Paste a bounce into a channel I'm in (`/invite @mailcheck`), or mention me in its thread: I reply in the thread.""",
    "ja": """*mailcheck* — メールが迷惑メールになる・バウンスする理由と対処方法
• `/mailcheck example.com` — ドメインを監査: SPF、DKIM、DMARC、MX、PTR、MTA-STS、TLS-RPT、BIMI、DNSSEC、ブロックリスト、Gmail / Yahoo / Microsoft の送信者要件
• `/mailcheck domain example.com selector=s1 ip=192.0.2.1` — DKIM セレクタと送信 IP も確認
• `/mailcheck ip 192.0.2.1 198.51.100.7` — IP の PTR・正引き確認・ブロックリスト
• `/mailcheck spf example.com 192.0.2.1` — この IP はドメインの SPF に合格するか（評価の経過つき）
• `/mailcheck bounce` · `/mailcheck message` — バウンスや迷惑メール判定されたメールを解析させる方法
• `/mailcheck watch example.com daily 09:00 tz=Asia/Tokyo` — 変化点のダイジェスト（`weekdays 09:00`、`weekly mon 09:00`）· `unwatch example.com` · `watches` · `digest now`
• `/mailcheck reports` — このチャンネルで最後に共有されたDMARCレポート・TLSレポートのファイルを要約（ファイルを共有するだけでも要約します: xml、gz、zip、json、レポートメール）
• `/mailcheck logs` — このチャンネルで最後に共有されたメールログを、1時間ごとのグラフつきで要約（Postfix・Exim・Sendmailのログを、そのままでも.gzでも共有するだけで要約します。アドレスは伏せます）
• `/mailcheck lang en` — English (`lang en workspace` でワークスペースの既定を変更)
• `/mailcheck autodetect on|off` — このチャンネルに貼られたバウンスへの自動返信（既定はオン）
私が参加しているチャンネル（`/invite @mailcheck`）にバウンスを貼るか、そのスレッドで私にメンションすると、スレッドで返信します。""",
}

BOUNCE_HOWTO = {
    "en": """*Have a bounce explained*
1. Paste it into a channel I'm in (`/invite @mailcheck` first): the whole bounce message, just its `Diagnostic-Code` / SMTP reply (e.g. `550 5.7.26 …`), or Postfix / Exim log lines (`status=bounced`, `status=deferred`).
2. I reply in the thread: what happened, who rejected it and why, what to fix — and I check the sending IP and domain it names live.
Already posted? Mention @mailcheck in that thread. Attach the `.eml` file if you have it.
(Slash commands can't carry a multi-line paste, so this goes through messages.)""",
    "ja": """*バウンスを解析させる*
1. 私が参加しているチャンネル（先に `/invite @mailcheck`）に貼り付けてください: バウンスメール全体、`Diagnostic-Code` や SMTP 応答だけ（例 `550 5.7.26 …`）、Postfix / Exim のログ行（`status=bounced`、`status=deferred`）のいずれでも構いません。
2. スレッドで返信します: 何が起きたか、誰がなぜ拒否したか、何を直すべきか。バウンスに書かれた送信 IP とドメインもその場で確認します。
すでに投稿済みなら、そのスレッドで @mailcheck にメンションしてください。`.eml` ファイルの添付でも解析できます。""",
}

MESSAGE_HOWTO = {
    "en": """*Find out why a message landed in spam*
1. In your mail client open the message source ("Show original" in Gmail, "View message source" in Outlook).
2. Paste the headers (and body) into a channel I'm in, or attach the `.eml` file — I reply in the thread with authentication results, alignment, the sending path and its reputation, and content signals filters dislike.
Already posted? Mention @mailcheck in that thread.""",
    "ja": """*メールが迷惑メールになった理由を調べる*
1. メールソフトでメッセージのソースを開きます（Gmail は「メッセージのソースを表示」、Outlook は「メッセージのソースを表示」）。
2. ヘッダー（と本文）を私が参加しているチャンネルに貼るか、`.eml` を添付してください。認証結果、アライメント、配送経路とその評判、フィルタが嫌う内容の兆候をスレッドで返信します。
すでに投稿済みなら、そのスレッドで @mailcheck にメンションしてください。""",
}

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "checking": "Checking {what} …",
        "busy": "You're running a lot of checks — please wait a minute and try again.",
        "rate_limited": "Rate limited: too many checks from you or this workspace. Try again in {seconds} s.",
        "usage": "{error}\nTry `/mailcheck help`.",
        "failed": "Sorry — the check of {what} failed unexpectedly. Please try again in a moment.",
        "slack_unavailable": ":warning: mailcheck cannot reach Slack's Web API right now, so this command "
                             "was not run. Please try again in a few minutes; if it keeps failing, the app's "
                             "admin can see the reason at the bot's /healthz.",
        "failed_request": ":warning: mailcheck could not handle this command (an error on the bot's side). "
                          "Please try again in a moment.",
        "timeout": "The check of {what} took too long and was stopped. DNS for it may be slow or unreachable.",
        "lang_set": "Language set to English for {who}.",
        "you": "you", "workspace": "this workspace",
        "autodetect_on": "Auto-detect is *on* in this channel: pasted bounces get an answer in their thread.",
        "autodetect_off": "Auto-detect is *off* in this channel: mention @mailcheck in a thread to have a bounce analysed.",
        "no_store": "Settings can't be saved right now (storage unavailable).",
        "working": "Working on it …",
        "watching": "Watching *{target}* here — {schedule} ({tz}). Each digest leads with what changed.",
        "watch_next": " First digest: {when}.",
        "unwatched": "Stopped watching *{target}* in this channel.",
        "not_watched": "*{target}* isn't watched in this channel.",
        "no_watches": "Nothing is watched in this channel. Try `/mailcheck watch example.com daily 09:00`.",
        "watches": "*Watched in this channel*",
        "digest_started": "Running the digest for this channel …",
        "digest_missing": "Digests need a channel and the bot's database (its storage could not be opened).",
        "digest_done": "Digest posted.",
        "digest_none": "Nothing is watched in this channel, so there is no digest to post.",
        "no_bounce": "I couldn't find a bounce, SMTP reply or MTA log line in that message. `/mailcheck bounce` shows what I can read.",
        "mention_help": "Mention me in the thread of a pasted bounce, paste one here, or try `@mailcheck example.com`. `/mailcheck help` lists everything.",
        "file_too_big": "`{name}` is larger than {mb} MB; paste the headers or the bounce part instead.",
        "file_failed": "I couldn't download `{name}`.",
        "expired": "This report is no longer in memory; running it again …",
        "report_none": "`{name}` holds no DMARC or TLS report I can read (DMARC aggregate or failure report, TLS-RPT: xml, gz, zip, json or the report email).",
        "reports_no_file": "No DMARC or TLS report file among the last 20 messages here. Share one (xml, gz, zip, json or the report email) and I summarise it in its thread.",
        "reports_summarising": "Summarising the report in `{name}` in its thread …",
    },
    "ja": {
        "checking": "{what} を確認しています …",
        "busy": "短時間に多くのチェックが実行されています。1 分ほど待ってから再度お試しください。",
        "rate_limited": "レート制限中です（あなたまたはこのワークスペースのチェックが多すぎます）。{seconds} 秒後に再度お試しください。",
        "usage": "{error}\n`/mailcheck help` をご覧ください。",
        "failed": "申し訳ありません。{what} の確認中に予期しないエラーが発生しました。少し待ってから再度お試しください。",
        "slack_unavailable": ":warning: mailcheck から現在SlackのWeb APIに接続できないため、このコマンドは実行されません"
                             "でした。数分後にもう一度お試しください。繰り返し失敗する場合は、アプリの管理者が"
                             "ボットの /healthz で原因を確認できます。",
        "failed_request": ":warning: mailcheck 側のエラーにより、このコマンドを処理できませんでした。少し待ってから"
                          "再度お試しください。",
        "timeout": "{what} の確認に時間がかかりすぎたため中止しました。DNS が遅いか到達できない可能性があります。",
        "lang_set": "{who}の表示言語を日本語にしました。",
        "you": "あなた", "workspace": "このワークスペース",
        "autodetect_on": "このチャンネルの自動検出は *オン* です。貼られたバウンスにスレッドで返信します。",
        "autodetect_off": "このチャンネルの自動検出は *オフ* です。スレッドで @mailcheck にメンションすると解析します。",
        "no_store": "現在、設定を保存できません（ストレージが利用できません）。",
        "working": "処理しています …",
        "watching": "このチャンネルで *{target}* を監視します — {schedule}（{tz}）。ダイジェストは変化点から始まります。",
        "watch_next": " 最初のダイジェスト: {when}。",
        "unwatched": "このチャンネルでの *{target}* の監視を停止しました。",
        "not_watched": "*{target}* はこのチャンネルで監視されていません。",
        "no_watches": "このチャンネルで監視中の対象はありません。`/mailcheck watch example.com daily 09:00` をお試しください。",
        "watches": "*このチャンネルの監視対象*",
        "digest_started": "このチャンネルのダイジェストを作成しています …",
        "digest_missing": "ダイジェストには、チャンネルとボットのデータベースが必要です（保存先を開けませんでした）。",
        "digest_done": "ダイジェストを投稿しました。",
        "digest_none": "このチャンネルに監視対象がないため、投稿するダイジェストはありません。",
        "no_bounce": "このメッセージにバウンス、SMTP 応答、MTA ログ行が見つかりませんでした。`/mailcheck bounce` で読める形式を確認できます。",
        "mention_help": "貼られたバウンスのスレッドで私にメンションするか、ここに貼るか、`@mailcheck example.com` をお試しください。一覧は `/mailcheck help`。",
        "file_too_big": "`{name}` は {mb} MB を超えています。ヘッダーかバウンス部分を貼ってください。",
        "file_failed": "`{name}` をダウンロードできませんでした。",
        "expired": "このレポートはメモリにありません。再実行します …",
        "report_none": "`{name}` に読み取れるDMARCレポートまたはTLSレポートがありません（DMARC集計レポート・失敗レポート、TLS-RPTの xml、gz、zip、json、またはレポートメール）。",
        "reports_no_file": "このチャンネルの直近20件のメッセージにDMARCレポートまたはTLSレポートのファイルがありません。ファイル（xml、gz、zip、json、またはレポートメール）を共有すると、そのスレッドで要約します。",
        "reports_summarising": "`{name}` のレポートをそのスレッドで要約しています …",
    },
}


def text(lang: str, key: str, **kw: Any) -> str:
    table = TEXTS.get(lang, TEXTS["en"])
    value = table.get(key) or TEXTS["en"][key]
    return value.format(**kw) if kw else value


def encode_value(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if len(raw) > 2000:  # Slack's button value limit: drop the re-run recipe, keep the cache id
        data = {k: v for k, v in data.items() if k in ("v", "r", "l", "ch", "ts")}
        raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return raw


def decode_value(raw: str | None) -> dict[str, Any]:
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
