"""Bounce analysis throughput and agreement: mailcheck vs Sisimai (Debian libsisimai-perl).

Usage: python benchmarks/bounce_vs_sisimai.py [CORPUS_DIR] [--rounds N]

Both tools parse every email of the corpus N times in the same run. Perl start-up
and module loading are excluded: the Perl driver times only its loop of
`Sisimai->make($file)` calls with Time::HiRes, and we time only our loop of
analyse_bounce() calls (knowledge files loaded once before timing, as in a running bot).
Agreement compares, per file, the first recipient's reason of each tool, and the
reasons of both against the corpus labels (Sisimai 4.x predates some v5 reasons,
e.g. authfailure/requireptr/notcompliantrfc, so its own label agreement is lower).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from handlers.bounce import analyse_bounce  # noqa: E402
from knowledge.bounce import load  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "bounces"

PERL_DRIVER = r"""
use strict; use warnings;
use Sisimai; use Time::HiRes qw(time); use JSON::PP;
my ($rounds, @files) = @ARGV;
my %reasons;
my $t0 = time;
for my $r (1 .. $rounds) {
    for my $f (@files) {
        my $v = Sisimai->make($f, 'delivered' => 1, 'vacation' => 1);
        next unless $r == 1;
        $reasons{$f} = $v ? [ map { $_->reason } @$v ] : [];
    }
}
my $elapsed = time - $t0;
print JSON::PP->new->canonical->encode({ elapsed => $elapsed, reasons => \%reasons,
                                         version => "" . $Sisimai::VERSION });
"""

# Sisimai 4.x names -> SPEC vocabulary (as the corpus README maps them).
OLD_NAMES = {
    "toomanyconn": "ratelimited",
    "speeding": "ratelimited",
    "mesgtoobig": "emailtoolarge",
    "exceedlimit": "emailtoolarge",
}


def run_sisimai(files: list[Path], rounds: int) -> dict | None:
    if not shutil.which("perl"):
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".pl", delete=False) as fh:
        fh.write(PERL_DRIVER)
        script = fh.name
    try:
        proc = subprocess.run(
            ["perl", script, str(rounds), *map(str, files)],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    finally:
        Path(script).unlink(missing_ok=True)
    if proc.returncode != 0:
        print("sisimai failed:", proc.stderr[:500])
        return None
    return json.loads(proc.stdout)


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 3
    if "--rounds" in argv:
        args = [a for a in args if a != str(rounds)]
    corpus = Path(args[0]) if args else DEFAULT_CORPUS
    labels = {
        json.loads(x)["file"]: json.loads(x) for x in (corpus / "labels.jsonl").read_text().splitlines() if x
    }
    files = sorted((corpus / "emails").glob("*.eml"))
    blobs = [f.read_bytes() for f in files]
    load()  # knowledge files are read once per process, like in the bot
    ours: dict[str, list[str]] = {}
    t0 = time.perf_counter()
    for r in range(rounds):
        for f, blob in zip(files, blobs, strict=True):
            rep = analyse_bounce(blob)
            if r == 0:
                ours[str(f)] = [b.reason for b in rep.bounces]
    ours_elapsed = time.perf_counter() - t0
    n = len(files) * rounds
    print(f"corpus: {len(files)} emails x {rounds} rounds = {n} parses")
    print(f"mailcheck: {ours_elapsed:.3f} s, {n / ours_elapsed:,.0f} messages/s")
    sis = run_sisimai(files, rounds)
    if sis is None:
        print("Sisimai: not available (install Debian libsisimai-perl)")
        return 0
    s_elapsed = float(sis["elapsed"])
    print(
        f"Sisimai {sis['version']} (Perl, start-up excluded): {s_elapsed:.3f} s, {n / s_elapsed:,.0f} messages/s"
    )
    print(f"ratio: mailcheck is {s_elapsed / ours_elapsed:.2f}x Sisimai's speed")

    agree = both = 0
    vs_label = Counter()
    disagreements: Counter[tuple[str, str]] = Counter()
    for f in files:
        key = str(f)
        a = ours.get(key, [])
        b = [OLD_NAMES.get(x, x) for x in sis["reasons"].get(key, [])]
        lab = labels.get(f"emails/{f.name}")
        if lab and lab["expect"]:
            want = lab["expect"][0]["reason"]
            vs_label["ours"] += bool(a) and a[0] == want
            vs_label["sisimai"] += bool(b) and b[0] == want
            vs_label["n"] += 1
        if a and b:
            both += 1
            if a[0] == b[0]:
                agree += 1
            else:
                disagreements[(a[0], b[0])] += 1
    print(
        f"reason agreement mailcheck vs Sisimai (first recipient, both decoded): {agree}/{both} = {agree / max(both, 1):.3f}"
    )
    print(
        f"first-recipient agreement with corpus labels: mailcheck {vs_label['ours']}/{vs_label['n']}, "
        f"Sisimai {sis['version']} {vs_label['sisimai']}/{vs_label['n']}"
    )
    print("most common disagreements (mailcheck, Sisimai):")
    for (a, b), c in disagreements.most_common(10):
        print(f"  {a:>16} vs {b:<16} {c}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
