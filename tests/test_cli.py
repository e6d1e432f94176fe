"""The `mailcheck` command as a user runs it: exit codes, JSON shape, bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.dnsworld import DNSWorld, free_port

SEVERITIES = {"critical", "warning", "info", "ok", "unknown"}


def run(args: list[str], world: DNSWorld | None = None, stdin: str | bytes | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = world.env() if world else None
    data = stdin.decode("utf-8", "replace") if isinstance(stdin, bytes) else stdin
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, input=data, capture_output=True,
                          text=True, timeout=timeout)


def test_help_starts_fast_and_lists_commands() -> None:
    t0 = time.monotonic()
    p = run(["--help"])
    assert p.returncode == 0
    for cmd in ("domain", "ip", "spf", "bounce"):
        assert cmd in p.stdout
    assert time.monotonic() - t0 < 10  # generous: only guards against importing the world at start-up


@pytest.mark.parametrize("bad", ["not a domain", "exa mple.com", "-rf", "a..b", "1234", "http://"])
def test_a_bad_domain_is_one_clear_line_and_exit_2(bad: str) -> None:
    p = run(["domain", "--", bad] if bad.startswith("-") else ["domain", bad])
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert p.stderr.startswith("mailcheck: error:")


def test_unknown_command_is_a_usage_error() -> None:
    p = run(["frobnicate"])
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_domain_json_has_the_spec_shape(dns_world: DNSWorld) -> None:
    p = run(["domain", "good.example", "--json"], dns_world)
    assert p.returncode in (0, 1), p.stderr
    report = json.loads(p.stdout)
    assert report["kind"] == "domain" and report["subject"] == "good.example"
    assert isinstance(report["duration_ms"], int) and report["checked_at"].endswith("Z")
    for f in report["findings"]:
        assert set(f) >= {"code", "severity", "title", "detail", "evidence", "remediation"}
        assert f["severity"] in SEVERITIES
    for row in report["blocklists"]:
        assert row["status"] in ("listed", "clean", "unknown")
        assert set(row) >= {"zone", "target", "status", "codes", "meaning", "delist_url"}
    codes = {f["code"]: f["severity"] for f in report["findings"]}
    assert codes.get("spf.ok", "ok") == "ok" and "dmarc.ok" in codes
    assert {"requirements.gmail", "requirements.yahoo", "requirements.microsoft"} <= set(codes)


def test_an_11_lookup_spf_is_critical_and_exits_1(dns_world: DNSWorld) -> None:
    p = run(["--json", "domain", "lookups.example"], dns_world)
    assert p.returncode == 1
    codes = {f["code"] for f in json.loads(p.stdout)["findings"]}
    assert "spf.too_many_lookups" in codes


def test_global_options_work_after_the_subcommand(dns_world: DNSWorld) -> None:
    p = run(["domain", "weak.example", "--lang", "ja", "--json", "--timeout", "2"], dns_world)
    report = json.loads(p.stdout)
    assert report["lang"] == "ja"


def test_an_address_is_reduced_to_its_domain_and_said_so(dns_world: DNSWorld) -> None:
    p = run(["--json", "domain", "postmaster@good.example"], dns_world)
    report = json.loads(p.stdout)
    assert report["subject"] == "good.example"
    assert any("address" in n for n in report["notes"])


def test_a_dead_resolver_gives_unknown_and_exit_3(dns_world: DNSWorld) -> None:
    port = free_port()  # nothing listens here
    p = run(["--json", "--nameserver", f"127.0.0.1:{port}", "--timeout", "0.4", "domain", "good.example"])
    assert p.returncode == 3, p.stderr
    report = json.loads(p.stdout)
    severities = {f["severity"] for f in report["findings"]}
    assert severities <= {"unknown", "info"} or "ok" not in severities
    assert not any(f["severity"] == "ok" for f in report["findings"])


def test_the_terminal_report_groups_checks_and_shows_fixes(dns_world: DNSWorld) -> None:
    p = run(["domain", "weak.example"], dns_world)
    assert "DMARC" in p.stdout and "SPF" in p.stdout
    assert "How to fix" in p.stdout


def test_the_terminal_report_in_japanese(dns_world: DNSWorld) -> None:
    p = run(["--lang", "ja", "domain", "weak.example"], dns_world)
    assert "対処方法" in p.stdout


def test_spf_command_reports_the_result_and_exits_0(dns_world: DNSWorld) -> None:
    p = run(["--json", "spf", "good.example", "192.0.2.99"], dns_world)
    assert p.returncode == 0
    assert json.loads(p.stdout)["spf"]["result"] == "pass"
    p = run(["--json", "spf", "good.example", "203.0.113.9"], dns_world)
    assert p.returncode == 0 and json.loads(p.stdout)["spf"]["result"] == "fail"


def test_ip_command_names_each_target_in_rfc5952_form(dns_world: DNSWorld) -> None:
    p = run(["--json", "ip", "192.0.2.10", "2001:DB8:0::10"], dns_world)
    assert p.returncode in (0, 1), p.stderr
    report = json.loads(p.stdout)
    targets = {row["target"] for row in report["blocklists"]}
    assert targets <= {"192.0.2.10", "2001:db8::10"} and "2001:db8::10" in targets


def test_bounce_from_stdin() -> None:
    reply = ("550-5.7.26 This mail has been blocked because the sender is unauthenticated.\n"
             "550-5.7.26 Gmail requires all senders to authenticate with either SPF or DKIM.\n"
             "550 5.7.26 Authentication results: DKIM = did not pass - gsmtp\n")
    p = run(["--json", "bounce", "-"], stdin=reply)
    report = json.loads(p.stdout)
    assert report["kind"] == "bounce"
    assert report["bounces"][0]["reason"] == "authfailure"
    assert report["bounces"][0]["provider"] == "google"


def test_a_binary_junk_paste_is_answered_quickly_without_traceback() -> None:
    junk = bytes(range(256)) * 20000
    t0 = time.monotonic()
    p = run(["--json", "bounce", "-"], stdin=junk)
    assert time.monotonic() - t0 < 10
    assert "Traceback" not in p.stderr
    assert json.loads(p.stdout)["bounces"] == []


# -- the digest clock's knobs ---------------------------------------------------------------
def test_digest_loop_interval_and_lease_are_checked(tmp_path: object) -> None:
    import os

    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/mc.db"}
    for args, says in (
        (["digest", "run", "--interval", "60"], "--interval and --lease go with --loop"),
        (["digest", "run", "--loop", "--interval", "1"], "--interval must be 5-3600 seconds"),
        (["digest", "run", "--loop", "--lease", "5"], "--lease must be 60-86400 seconds"),
    ):
        p = subprocess.run([sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 2, (args, p.stderr)
        assert says in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_digest_loop_runs_with_its_interval_and_stops_on_sigterm(tmp_path: object) -> None:
    import os
    import signal

    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/mc.db"}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "digest", "run", "--loop", "--interval", "5", "--lease", "120"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Wait until it says it is up (signal handlers installed, store open): a fixed
        # sleep raced the interpreter's start-up on a slow machine.
        import selectors

        assert proc.stderr is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stderr, selectors.EVENT_READ)
        seen = ""
        deadline = time.monotonic() + 60
        while "digest loop started" not in seen and time.monotonic() < deadline and proc.poll() is None:
            if sel.select(timeout=1):
                seen += proc.stderr.readline()
        assert "digest loop started" in seen, seen
        time.sleep(0.5)  # into the first pass (nothing due) or the wait for the next
        assert proc.poll() is None, seen
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_spf_exits_0_whatever_the_result_even_without_any_dns_answer() -> None:
    """SPEC: temperror is an SPF result; `mailcheck spf` exits 0 with it."""
    dead = free_port()
    p = run(["--json", "--nameserver", f"127.0.0.1:{dead}", "--timeout", "0.5", "spf", "good.example", "192.0.2.1"])
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["spf"]["result"] == "temperror"


def test_every_report_has_the_spf_key() -> None:
    p = run(["--json", "bounce", "-"], stdin="550 5.1.1 <a@example.org>: Recipient address rejected: User unknown")
    report = json.loads(p.stdout)
    assert "spf" in report and report["spf"] is None


def test_helo_and_sender_go_verbatim_even_when_they_start_with_a_dash() -> None:
    dead = free_port()
    p = run(["--json", "--nameserver", f"127.0.0.1:{dead}", "--timeout", "0.5", "spf", "good.example", "192.0.2.1",
             "--sender", "-x@example.org", "--helo", "-weird"])
    assert p.returncode == 0, p.stderr
    spf = json.loads(p.stdout)["spf"]
    assert (spf["sender"], spf["helo"]) == ("-x@example.org", "-weird")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "a command is needed"),
        (["--timeout", "nan", "spf", "good.example", "192.0.2.1"], "--timeout must be more than 0 and at most 60 seconds"),
        (["--nameserver", "127.0.0.1:xx", "spf", "good.example", "192.0.2.1"], "bad nameserver port 'xx'"),
        (["--nameserver", "bad host!", "spf", "good.example", "192.0.2.1"], "neither an IP address nor a host name"),
    ],
)
def test_usage_errors_are_one_line_on_stderr(args: list[str], says: str) -> None:
    p = run(args)
    assert p.returncode == 2 and p.stdout == "", (p.stdout, p.stderr)
    assert says in p.stderr and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_a_nameserver_may_be_given_by_host_name() -> None:
    from handlers.net import parse_nameserver

    assert parse_nameserver("localhost:5353") in (("127.0.0.1", 5353), ("::1", 5353))


def test_a_terminal_that_cannot_show_japanese_gets_question_marks_not_a_traceback() -> None:
    import os

    p = subprocess.run([sys.executable, "-m", "bot", "--lang", "ja", "bounce", "-"],
                       input="550 5.1.1 <ユーザー@example.org>: Recipient address rejected: User unknown",
                       env={**os.environ, "PYTHONIOENCODING": "ascii"}, capture_output=True, text=True,
                       encoding="ascii", errors="replace", timeout=60)
    assert "Traceback" not in p.stderr and p.returncode in (0, 1), p.stderr
    assert "userunknown" in p.stdout


# -- careless input gets one clear line and exit 2 ------------------------------------------
def test_an_address_with_a_port_is_told_to_drop_the_port() -> None:
    for given, alone in (("192.0.2.10:25", "192.0.2.10"), ("[2001:db8::1]:25", "2001:db8::1")):
        p = run(["ip", given])
        assert p.returncode == 2 and p.stderr.count("\n") == 1
        assert "port" in p.stderr and f"({alone})" in p.stderr


def test_an_ip_file_with_no_addresses_says_so(tmp_path: Path) -> None:
    f = tmp_path / "ips.txt"
    f.write_text("# nothing here yet\n\n")
    p = run(["ip", "--file", str(f)])
    assert p.returncode == 2 and "holds no IP addresses" in p.stderr


def test_bounce_and_message_treat_an_empty_input_alike() -> None:
    for cmd in ("bounce", "message"):
        p = run([cmd, "-"], stdin=b"  \n")
        assert p.returncode == 2 and "the input is empty" in p.stderr and "Traceback" not in p.stderr


def test_a_binary_file_given_to_message_is_refused_in_one_line() -> None:
    p = run(["message", "-"], stdin=bytes(range(256)) * 50)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "binary" in p.stderr
    assert p.stdout == ""


def test_the_timeout_error_states_the_real_range() -> None:
    p = run(["--timeout", "0", "ip", "192.0.2.1"])
    assert p.returncode == 2 and "more than 0 and at most 60 seconds" in p.stderr


def test_an_unknown_mailcheck_lang_is_reported_once_and_english_is_used() -> None:
    import os

    env = {**os.environ, "MAILCHECK_LANG": "xx"}
    p = subprocess.run([sys.executable, "-m", "bot", "--json", "bounce", "-"], env=env, input=b"550 5.1.1 no such user\n",
                       capture_output=True, timeout=60)
    assert p.stderr.decode().count("MAILCHECK_LANG") == 1
    assert json.loads(p.stdout)["lang"] == "en"


def test_a_reader_that_closes_the_pipe_does_not_turn_the_exit_code_critical() -> None:
    # `mailcheck bounce FILE | head -1`: delivered lines are not critical, so exit 0.
    line = ("postfix/smtp[1]: 4AB1C2D3E4: to=<a@hotmail.com>, relay=mx1.hotmail.com[203.0.113.5]:25, "
            "delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 2.0.0 Queued mail for delivery)\n")
    for opts in ([], ["--json"]):
        proc = subprocess.Popen([sys.executable, "-m", "bot", *opts, "bounce", "-"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(line.encode() * 600)  # a report far larger than the pipe's buffer
        proc.stdin.close()
        proc.stdout.readline()
        proc.stdout.close()  # as `head -1` does
        assert proc.wait(timeout=60) == 0
        assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()


def test_spf_on_a_plus_all_domain_says_pass_and_warns_it_authorises_everyone(dns_world: DNSWorld) -> None:
    p = subprocess.run([sys.executable, "-m", "bot", "spf", "plusall.example", "203.0.113.9", "--json"],
                       env=dns_world.env(), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr  # SPEC: `mailcheck spf` exits 0 whatever the result
    data = json.loads(p.stdout)
    assert data["spf"]["result"] == "pass"
    found = {f["code"]: f["severity"] for f in data["findings"]}
    assert found == {"spf.pass": "ok", "spf.permissive_all": "critical"}


def test_a_parked_domain_exits_0_and_a_missing_one_exits_1_with_one_headline(dns_world: DNSWorld) -> None:
    parked = subprocess.run([sys.executable, "-m", "bot", "domain", "nullmx.example"], env=dns_world.env(),
                            capture_output=True, text=True, timeout=120)
    assert parked.returncode == 0, parked.stdout
    assert "parked" in parked.stdout and "From domain has no null MX" not in parked.stdout
    gone = subprocess.run([sys.executable, "-m", "bot", "domain", "nope.good.example", "--json"],
                          env=dns_world.env(), capture_output=True, text=True, timeout=120)
    assert gone.returncode == 1
    assert [f["code"] for f in json.loads(gone.stdout)["findings"]] == ["domain.nxdomain"]


def test_what_could_not_be_checked_is_one_compact_group_after_what_is_wrong(dns_world: DNSWorld) -> None:
    env = {**dns_world.env(), "COLUMNS": "100"}
    plain = subprocess.run([sys.executable, "-m", "bot", "domain", "weak.example"], env=env,
                           capture_output=True, text=True, timeout=120).stdout
    lines = plain.splitlines()
    heading = lines.index(next(ln for ln in lines if ln.startswith("Could not be checked")))
    first_problem = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith(("✖", "▲")))
    assert first_problem < heading  # what is wrong comes first
    unknown_rows = [ln for ln in lines if "blocklist" in ln and "could not be checked" in ln]
    assert len(unknown_rows) == 1 and "timeout" in unknown_rows[0]  # one line for every unknown list
    assert not [ln for ln in lines if ln.strip().startswith("unknown ")]  # no per-list table rows
    # Every code stays on its title's line.
    assert not [ln for ln in lines if re.fullmatch(r"\s*[a-z_]+\.[a-z_.]+", ln)]
    verbose = subprocess.run([sys.executable, "-m", "bot", "domain", "weak.example", "--verbose"], env=env,
                             capture_output=True, text=True, timeout=120).stdout
    assert len([ln for ln in verbose.splitlines() if ln.strip().startswith("unknown ")]) >= 2
    assert "Could not be checked" not in verbose
