"""Small helpers for building findings consistently across checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.model import Finding, Severity

if TYPE_CHECKING:  # dnspython is heavy; a bounce analysis must start without it
    from handlers.net import DNSResult


def finding(
    code: str,
    severity: Severity,
    title: str,
    detail: str = "",
    *,
    evidence: dict[str, Any] | None = None,
    remediation: list[str] | None = None,
    check: str = "",
) -> Finding:
    return Finding(
        code=code,
        severity=severity,
        title=title,
        detail=detail,
        evidence=dict(evidence or {}),
        remediation=list(remediation or []),
        check=check or code.split(".", 1)[0],
    )


def dns_unknown(code: str, what: str, result: DNSResult, target: str, *, check: str = "") -> Finding:
    """An `unknown` finding for a lookup that got no usable answer.

    Never turn a timeout/SERVFAIL into pass or fail: say what could not be seen.
    """
    return finding(
        code,
        "unknown",
        f"Could not check {what} for {target}",
        f"Looking up {result.name.rstrip('.')} ({result.rdtype}): {result.describe()}. "
        "Nothing is concluded from an answer that was not received; try again or use another resolver.",
        evidence={"target": target, "host": result.name.rstrip("."), "error": result.describe()},
        check=check,
    )
