"""Measure the bounce analyser against the labelled corpus and print per-module misses.

Usage: python tools/bounce_accuracy.py [CORPUS_DIR] [-v]

Scoring (corpus README): recipients are compared in order; a reason counts when it
equals `expect` or `older_expect`; statuses are scored only where the label's
status is explicit (status_pseudo false and non-empty). Negatives must give no bounces.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from handlers.bounce import analyse_bounce  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "bounces"

# Provider column. The labels carry no provider, only Sisimai's `module` (the MTA or
# service whose notice format decoded the mail). For modules named after a receiving
# provider that module is the best available proxy of "the text names this provider";
# a provider's own notice (lhost) can still quote another server's reply, so a miss
# here is a lead to inspect, not proof of an error.
MODULE_PROVIDER: dict[str, str] = {
    "Gmail": "google", "GSuite": "google", "GoogleGroups": "google", "Google": "google",
    "GoogleWorkspace": "google", "Outlook": "microsoft", "Office365": "microsoft",
    "Microsoft": "microsoft", "Yahoo": "yahoo", "YahooInc": "yahoo", "Aol": "yahoo",
    "Apple": "apple", "MailRu": "mailru", "Zoho": "zoho", "EZweb": "kddi", "KDDI": "kddi",
    "NTTDOCOMO": "docomo", "Facebook": "facebook", "GMX": "gmx", "GoDaddy": "godaddy",
    "MessageLabs": "messagelabs", "Mimecast": "mimecast", "Barracuda": "barracuda",
    "Tencent": "tencent", "Verizon": "verizon", "Yandex": "yandex", "Biglobe": "biglobe",
    "Cox": "cox", "Spectrum": "spectrum", "FrancePTT": "orange|laposte", "IUA": "iua",
    "McAfee": "mcafee", "MXLogic": "mcafee", "EinsUndEins": "ionos",
}  # fmt: skip


@dataclass
class Score:
    reason_ok: int = 0
    reason_n: int = 0
    status_ok: int = 0
    status_n: int = 0
    hard_ok: int = 0
    hard_n: int = 0
    negatives_ok: int = 0
    provider_ok: int = 0
    provider_n: int = 0
    lhost_provider_ok: int = 0
    lhost_provider_n: int = 0
    negatives_n: int = 0
    misses: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    per_module: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    @property
    def reason_rate(self) -> float:
        return self.reason_ok / self.reason_n if self.reason_n else 0.0

    @property
    def status_rate(self) -> float:
        return self.status_ok / self.status_n if self.status_n else 0.0

    @property
    def hard_rate(self) -> float:
        return self.hard_ok / self.hard_n if self.hard_n else 0.0


def load_labels(corpus: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    labels = [json.loads(x) for x in (corpus / "labels.jsonl").read_text().splitlines() if x.strip()]
    negatives_path = corpus / "negatives.jsonl"
    negatives = (
        [json.loads(x) for x in negatives_path.read_text().splitlines() if x.strip()]
        if negatives_path.exists()
        else []
    )
    return labels, negatives


def score(corpus: Path = DEFAULT_CORPUS) -> Score:
    labels, negatives = load_labels(corpus)
    s = Score()
    for lab in labels:
        module = lab.get("module") or "?"
        report = analyse_bounce((corpus / lab["file"]).read_bytes())
        got = report.bounces
        older = lab.get("older_expect") or []
        for i, exp in enumerate(lab["expect"]):
            b = got[i] if i < len(got) else None
            ok_reasons = {exp["reason"]}
            if i < len(older):
                ok_reasons.add(older[i]["reason"])
            s.reason_n += 1
            s.per_module[module]["n"] += 1
            if b is not None and b.reason in ok_reasons:
                s.reason_ok += 1
                s.per_module[module]["reason_ok"] += 1
            else:
                s.misses[module].append(
                    f"{lab['file']}[{i}] reason {b.reason if b else None!r} != {sorted(ok_reasons)}"
                    + (f" | {b.status} {b.reply_code} {b.diagnostic[:160]!r}" if b else " | no record")
                )
            if exp.get("status") and not exp.get("status_pseudo"):
                s.status_n += 1
                if b is not None and b.status == exp["status"]:
                    s.status_ok += 1
                    s.per_module[module]["status_ok"] += 1
                else:
                    s.misses[module].append(
                        f"{lab['file']}[{i}] status {b.status if b else None!r} != {exp['status']!r}"
                    )
            want = MODULE_PROVIDER.get(module)
            if want is not None and not Path(lab["file"]).name.startswith("rhost-"):
                # lhost: the provider wrote the notice; the reply may come from anyone.
                s.lhost_provider_n += 1
                s.lhost_provider_ok += b is not None and b.provider in want.split("|")
            elif want is not None:
                s.provider_n += 1
                if b is not None and b.provider in want.split("|"):
                    s.provider_ok += 1
                else:
                    s.misses[module].append(
                        f"{lab['file']}[{i}] provider {b.provider if b else None!r} != {want!r}"
                        + (f" | {b.remote_host} {b.diagnostic[:120]!r}" if b else "")
                    )
            if isinstance(exp.get("hardbounce"), bool):
                s.hard_n += 1
                if b is not None and b.hard == exp["hardbounce"]:
                    s.hard_ok += 1
                else:
                    s.misses[module].append(
                        f"{lab['file']}[{i}] hard {b.hard if b else None!r} != {exp['hardbounce']!r}"
                        + (f" ({b.reason})" if b else "")
                    )
        if len(got) != len(lab["expect"]):
            s.misses[module].append(f"{lab['file']} recipients {len(got)} != {len(lab['expect'])}")
    for neg in negatives:
        s.negatives_n += 1
        report = analyse_bounce((corpus / neg["file"]).read_bytes())
        if not report.bounces:
            s.negatives_ok += 1
        else:
            s.misses["negatives"].append(f"{neg['file']} gave {len(report.bounces)} bounces")
    return s


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("-")]
    corpus = Path(args[0]) if args else DEFAULT_CORPUS
    if not (corpus / "labels.jsonl").exists():
        print(f"corpus not found: {corpus}")
        return 2
    s = score(corpus)
    print(f"reason agreement: {s.reason_ok}/{s.reason_n} = {s.reason_rate:.3f}")
    print(f"status agreement: {s.status_ok}/{s.status_n} = {s.status_rate:.3f} (explicit statuses only)")
    print(f"hard agreement: {s.hard_ok}/{s.hard_n} = {s.hard_rate:.3f}")
    rate = s.provider_ok / s.provider_n if s.provider_n else 0.0
    print(f"provider agreement: {s.provider_ok}/{s.provider_n} = {rate:.3f} (rhost-* mails of a provider module)")
    print(f"  (lhost-* mails written by that provider: {s.lhost_provider_ok}/{s.lhost_provider_n}; not scored)")
    print(f"negatives with no bounces: {s.negatives_ok}/{s.negatives_n}")
    print()
    print("per-module misses:")
    for module in sorted(s.misses, key=lambda m: -len(s.misses[m])):
        c = s.per_module.get(module, Counter())
        print(
            f"  {module}: {len(s.misses[module])} miss(es)"
            + (f" (reason {c['reason_ok']}/{c['n']})" if c else "")
        )
        if "-v" in argv:
            for line in s.misses[module]:
                print(f"      {line}")
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` is fine
    raise SystemExit(main(sys.argv[1:]))
