"""Agreement with Sisimai's labels on the development corpus (../shared/corpus/bounces).

Targets (issue 4): reason agreement >= 0.95, status agreement >= 0.98 where the label's
status is explicit, no bounces for the negatives. Both are met; the floors below are what
the analyser reaches today and must never drop (a regression). `hard` is measured against
the labels' `hardbounce` (Sisimai's meaning: the address itself is dead).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "bounces"
ROOT = Path(__file__).resolve().parents[1]

REASON_TARGET, STATUS_TARGET = 0.95, 0.98
REASON_FLOOR, STATUS_FLOOR, HARD_FLOOR = 0.975, 0.98, 0.985  # measured: 0.977, 0.983, 0.987

pytestmark = pytest.mark.skipif(not (CORPUS / "labels.jsonl").exists(), reason="bounce corpus not present")


@pytest.fixture(scope="module")
def score():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tools.bounce_accuracy import score as compute

    return compute(CORPUS)


def test_negatives_give_no_bounces(score) -> None:
    assert score.negatives_ok == score.negatives_n


def test_no_regression_below_floor(score) -> None:
    assert score.reason_rate >= REASON_FLOOR, f"reason agreement {score.reason_rate:.3f}"
    assert score.status_rate >= STATUS_FLOOR, f"status agreement {score.status_rate:.3f}"


def test_reason_agreement_target(score) -> None:
    assert score.reason_rate >= REASON_TARGET, f"reason agreement {score.reason_rate:.3f}"


def test_status_agreement_target(score) -> None:
    assert score.status_rate >= STATUS_TARGET, f"status agreement {score.status_rate:.3f}"


def test_hard_flag_agreement(score) -> None:
    assert score.hard_rate >= HARD_FLOOR, f"hard agreement {score.hard_rate:.3f}"
