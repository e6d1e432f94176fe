"""SPF (RFC 7208): record parser, check_host() evaluator, and the domain audit.

Public API:
- `parse_record(text) -> SPFRecord | SPFSyntaxError`
- `await check_host(resolver, ip, domain, sender, helo=None) -> SPFResult`
- `await spf_check(resolver, domain, ip, helo=None, sender=None) -> Report`
- `await audit_spf(resolver, domain) -> (list[Finding], tree)`
"""

from handlers.spf.audit import audit_spf
from handlers.spf.evaluate import SPFResult, check_host, spf_check
from handlers.spf.parser import SPFRecord, SPFSyntaxError, parse_record

__all__ = ["SPFRecord", "SPFResult", "SPFSyntaxError", "audit_spf", "check_host", "parse_record", "spf_check"]
