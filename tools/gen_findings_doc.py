#!/usr/bin/env python3
"""Generate docs/findings.md from knowledge/findings.yaml.

python tools/gen_findings_doc.py            # write docs/findings.md
python tools/gen_findings_doc.py --check    # exit 1 if the file is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge import loader  # noqa: E402

OUT = ROOT / "docs" / "findings.md"

HEADER = """\
# Finding codes

Generated from `knowledge/findings.yaml` by `tools/gen_findings_doc.py` — do not edit
by hand. Every finding in a report (`--json`: `findings[].code`) has one of these
codes. Codes are stable, lower-case and dotted. `severity` is the default; a check
may raise or lower it for a particular case (e.g. `requirements.*` is `ok` when every
DNS-visible item passes). Placeholders such as `{target}` are filled from the
finding's `evidence`. Remediation ids point to entries in `knowledge/remediation/`.

"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    findings = loader.load_findings()
    remediation = loader.load_remediation()
    groups: dict[str, list[str]] = {}
    for code in sorted(findings):
        groups.setdefault(code.split(".", 1)[0], []).append(code)
    lines = [HEADER.rstrip("\n"), ""]
    lines.append(f"{len(findings)} codes in {len(groups)} groups.")
    lines.append("")
    for group, codes in groups.items():
        lines.append(f"## {group}")
        lines.append("")
        lines.append("| code | severity | title (en) | title (ja) | meaning | remediation |")
        lines.append("|---|---|---|---|---|---|")
        for code in codes:
            f = findings[code]
            fixes = ", ".join(
                f"`{r}` ({_cell(remediation[r].title.en)})" if r in remediation else f"`{r}`"
                for r in f.remediation
            )
            lines.append(
                f"| `{code}` | {f.severity} | {_cell(f.title.en)} | {_cell(f.title.ja)} | "
                f"{_cell(f.detail.en)} | {fixes or '—'} |"
            )
        lines.append("")
    lines += _bounce_reason_section(remediation)
    return "\n".join(lines).rstrip("\n") + "\n"


# A reason record's `hard` (knowledge/bounce/records.py): is the address dead?
_HARD = {"yes": "yes", "no": "no", "if_permanent": "when permanent (5xx)"}


def _bounce_reason_section(remediation: dict[str, object]) -> list[str]:
    """`bounce.<reason>`: one finding per analysed recipient, named by its reason."""
    reasons = loader.load_reasons()
    lines = [
        "## bounce reasons",
        "",
        "A bounce analysis gives one finding per recipient, `bounce.<reason>`, with the reason in "
        "Sisimai's vocabulary (SPEC.md). Severity: `ok` for `delivered`, `info` for `vacation`, "
        "`warning` for `feedback`; otherwise `critical` when the failure is permanent (or the "
        "address is dead) and `warning` when it is temporary.",
        "",
        "| code | summary (en) | summary (ja) | address dead (`hard`) | remediation |",
        "|---|---|---|---|---|",
    ]
    for reason in sorted(reasons):
        info = reasons[reason]
        fixes = ", ".join(f"`{r}`" for r in info.remediation)
        lines.append(
            f"| `bounce.{reason}` | {_cell(info.summary.en)} | {_cell(info.summary.ja)} | "
            f"{_HARD[info.hard]} | {fixes} |"
        )
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if docs/findings.md is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is out of date; run tools/gen_findings_doc.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
