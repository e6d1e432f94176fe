"""The RFC 7208 test suite (openspf.org, release 2014.04), every case, over real sockets.

Each scenario's zonedata is served by the in-process authoritative server
(tests/support/zonedns.py) on 127.0.0.1; check_host() talks to it through the
project's DNS layer (handlers/net/) exactly as in production. `TIMEOUT`
entries never answer, so a short resolver timeout keeps the suite fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from handlers.net import Resolver
from handlers.spf import check_host
from tests.support.zonedns import ZoneServer, records_from_spf_suite

SUITE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "spf" / "rfc7208-tests.yml"


def _load() -> list[Any]:
    if not SUITE.exists():
        return []
    cases = []
    with SUITE.open("rb") as fh:
        for scenario in yaml.safe_load_all(fh):
            records = records_from_spf_suite(scenario["zonedata"])
            for name, test in scenario["tests"].items():
                cases.append(pytest.param(records, test, id=f"{scenario['description']}::{name}"))
    return cases


CASES = _load()


@pytest.fixture(scope="module")
def server() -> Iterator[ZoneServer]:
    with ZoneServer() as srv:
        yield srv


def test_suite_present() -> None:
    if not SUITE.exists():
        pytest.skip(f"{SUITE} not found")
    assert len(CASES) > 150


@pytest.mark.skipif(not CASES, reason="RFC 7208 test suite not found")
@pytest.mark.parametrize(("records", "test"), CASES)
async def test_rfc7208(server: ZoneServer, records: dict[tuple[str, str], Any], test: dict[str, Any]) -> None:
    server.set_records(records)
    # Cases that serve a never-answering name need a short timeout to stay quick; the
    # rest get a generous one, so a slow moment on the machine cannot turn an answer
    # into a temperror.
    silent = any(v == "TIMEOUT" for v in records.values())
    resolver = Resolver(nameservers=[server.address], timeout=0.3 if silent else 5.0)
    helo = str(test["helo"])
    mailfrom = str(test["mailfrom"])
    if mailfrom:
        sender = mailfrom
        domain = mailfrom.rpartition("@")[2]
    else:
        sender = f"postmaster@{helo}"
        domain = helo
    res = await check_host(resolver, str(test["host"]), domain, sender, helo)
    expected = test["result"]
    allowed = expected if isinstance(expected, list) else [expected]
    trace = "\n".join(str(t) for t in res.trace)
    assert res.result in allowed, f"{res.result} not in {allowed}: {res.problem}\n{trace}"
    if "explanation" in test:
        want = test["explanation"]
        got = res.explanation if res.explanation is not None else "DEFAULT"
        assert got == want, trace
