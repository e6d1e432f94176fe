"""Long fuzz run over every parser of user text (issue 8).

Runs the hypothesis properties of tests/test_fuzz.py (Slack unescaping, the
command router, the domain/IP/selector validator, schedules and time zones, the
message diagnosis, the bounce parser, the SPF parser) with far more examples,
round-robin in rounds of fresh random seeds until the time is up. Every failure
is printed with its shrunk example; the exit status is 1 if any target failed.

    python tools/fuzz.py --minutes 5
    python tools/fuzz.py --minutes 1 --only router,message
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, Phase, given, settings

from tests.test_fuzz import TARGETS, Target


def run_round(name: str, target: Target, examples: int) -> str | None:
    """One hypothesis run of `examples` examples; the failure text, or None."""
    prop = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
        print_blob=True,
    )(given(target.strategy)(target.check))
    try:
        prop()
    except Exception:
        return traceback.format_exc()
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5.0, help="total run time (default 5)")
    ap.add_argument("--examples", type=int, default=2000, help="examples per target per round (default 2000)")
    ap.add_argument("--only", default="", help="comma-separated target names (default: all)")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    end = time.monotonic() + args.minutes * 60
    failed: dict[str, str] = {}
    runs: dict[str, int] = dict.fromkeys(names, 0)
    rounds = 0
    while time.monotonic() < end:
        live = [n for n in names if n not in failed]
        if not live:
            break
        for name in live:
            if time.monotonic() >= end:
                break
            target = TARGETS[name]
            # The message diagnosis costs ~5 ms an example: fewer per round.
            examples = max(50, args.examples // 4) if name == "message" else args.examples
            t0 = time.monotonic()
            failure = run_round(name, target, examples)
            runs[name] += examples
            status = "FAIL" if failure else "ok"
            print(f"[{name}] round {rounds + 1}: {examples} examples, {time.monotonic() - t0:.1f}s, {status}",
                  flush=True)
            if failure:
                failed[name] = failure
                print(failure, flush=True)
        rounds += 1
    print("\nsummary:")
    for name in names:
        print(f"  {name:24} {runs[name]:>8} examples  {'FAILED' if name in failed else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
