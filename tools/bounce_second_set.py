"""Measure the bounce analyser on a second labelled set: flufl.bounce's test mails.

GNU Mailman's bounce detector, flufl.bounce (Apache-2.0), ships ~115 real bounce
mails with the addresses its authors expect a detector to find, and whether the
failure is temporary. They were labelled by another project, for another purpose
(which list members to unsubscribe), so they test what the Sisimai-labelled dev
corpus cannot: is every bounced recipient found, and is permanent/temporary right.

Nothing is vendored: the sdist is fetched from PyPI (or read from --sdist DIR).

Usage: python tools/bounce_second_set.py [--sdist DIR] [-v]
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from handlers.bounce import analyse_bounce  # noqa: E402


@dataclass
class Label:
    file: str
    recipients: list[str]
    temporary: bool


@dataclass
class Score:
    found: int = 0
    expected: int = 0
    files_all_found: int = 0
    files: int = 0
    permanent_ok: int = 0
    permanent_n: int = 0
    misses: list[str] = field(default_factory=list)


def fetch_sdist(dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
         "-d", str(dest), "flufl.bounce"],
        check=True,
    )
    archive = next(dest.glob("flufl*bounce-*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return next(p for p in dest.iterdir() if p.is_dir())


def load_labels(sdist: Path) -> list[Label]:
    """The DETECTORS table of tests/test_detectors.py: (detector, file, addresses, temporary)."""
    src = (sdist / "tests" / "test_detectors.py").read_text()
    start = src.index("DETECTORS = [")
    end = src.index("\n]\n", start)
    rows = ast.literal_eval(src[start + len("DETECTORS = ") : end + 2])
    labels: dict[str, Label] = {}
    for _detector, name, addrs, temporary in rows:
        got = [a.decode() for a in addrs]
        # A file listed twice (one detector finds nothing, another finds the address) keeps the addresses.
        if name not in labels or (got and not labels[name].recipients):
            labels[name] = Label(name, got, bool(temporary))
    return list(labels.values())


def score(sdist: Path, labels: list[Label]) -> Score:
    s = Score()
    for lab in labels:
        if not lab.recipients:
            continue  # "nothing detectable" there means nothing Mailman should unsubscribe
        report = analyse_bounce((sdist / "tests" / "data" / lab.file).read_bytes())
        by_addr = {(b.recipient or "").lower(): b for b in report.bounces}
        want = [a.lower() for a in lab.recipients]
        hit = [a for a in want if a in by_addr]
        s.found += len(hit)
        s.expected += len(want)
        s.files += 1
        s.files_all_found += len(hit) == len(want)
        for a in hit:
            rec = by_addr[a]
            permanent = getattr(rec, "permanent", rec.extra.get("permanent"))
            s.permanent_n += 1
            s.permanent_ok += permanent is (not lab.temporary)
        if len(hit) != len(want):
            s.misses.append(f"{lab.file}: expected {want}, got {sorted(by_addr)[:4]}")
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description="bounced recipients found on flufl.bounce's test mails")
    ap.add_argument("--sdist", type=Path, help="an unpacked flufl.bounce sdist (default: fetch from PyPI)")
    ap.add_argument("-v", action="store_true", help="list the misses")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sdist = args.sdist or fetch_sdist(Path(tmp))
        s = score(sdist, load_labels(sdist))
    print(f"recipients found: {s.found}/{s.expected} = {s.found / max(s.expected, 1):.3f}")
    print(f"files with every recipient found: {s.files_all_found}/{s.files}")
    print(f"permanent/temporary right (found recipients): {s.permanent_ok}/{s.permanent_n}")
    if args.v:
        for m in s.misses:
            print("  " + m)


if __name__ == "__main__":
    main()
