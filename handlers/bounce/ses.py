"""Amazon SES event notifications (JSON, often delivered through SNS by email or pasted).

Format: https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html
(notificationType / eventType Bounce, Complaint, Delivery).
"""

from __future__ import annotations

import json
from typing import Any

from .fact import Fact
from .scan import valid_ip
from .smtp import squeeze

_SUBTYPE_REASON = {
    "suppressed": "suppressed",
    "onaccountsuppressionlist": "suppressed",
    "mailboxfull": "mailboxfull",
    "messagetoolarge": "emailtoolarge",
    "contentrejected": "spamdetected",
    "attachmentrejected": "virusdetected",
}


def _load(text: str) -> dict[str, Any] | None:
    text = text.replace("!\n ", "")  # long lines wrapped by the mail system
    pos = text.find('"notificationType"')
    if pos < 0:
        pos = text.find('"eventType"')
    if pos < 0:
        return None
    start = text.rfind("{", 0, pos)
    if start < 0:
        return None
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        return None
    if isinstance(obj, dict) and isinstance(obj.get("Message"), str):  # SNS envelope
        try:
            obj = json.loads(obj["Message"])
        except ValueError:
            return None
    return obj if isinstance(obj, dict) else None


def ses_facts(text: str) -> list[Fact]:
    if '"notificationType"' not in text and '"eventType"' not in text:
        return []
    obj = _load(text)
    if not obj:
        return []
    kind = str(obj.get("notificationType") or obj.get("eventType") or "").lower()
    mail_obj = obj.get("mail")
    mail: dict[str, Any] = mail_obj if isinstance(mail_obj, dict) else {}
    source = mail.get("source")
    sender = source if isinstance(source, str) else None
    facts: list[Fact] = []
    if kind == "bounce" and isinstance(obj.get("bounce"), dict):
        b = obj["bounce"]
        sub = str(b.get("bounceSubType", "")).lower()
        for r in b.get("bouncedRecipients") or []:
            if not isinstance(r, dict):
                continue
            f = Fact(recipient=r.get("emailAddress"), source="amazon-ses", sender=sender)
            f.action = str(r.get("action") or "failed").lower()
            f.status = r.get("status") or None
            diag = str(r.get("diagnosticCode") or "")
            if ";" in diag[:20]:
                dtype, _, diag = diag.partition(";")
                f.diag_type = dtype.strip().upper()
            f.diagnostic = squeeze(diag)
            f.reason = _SUBTYPE_REASON.get(sub, "")
            f.remote_ip = valid_ip(str(b.get("remoteMtaIp") or ""))
            f.extra["ses_bounce_type"] = b.get("bounceType")
            f.extra["ses_bounce_subtype"] = b.get("bounceSubType")
            facts.append(f)
    elif kind == "complaint" and isinstance(obj.get("complaint"), dict):
        c = obj["complaint"]
        for r in c.get("complainedRecipients") or []:
            if isinstance(r, dict):
                f = Fact(
                    recipient=r.get("emailAddress"), reason="feedback", source="amazon-ses", sender=sender
                )
                f.extra["feedback_type"] = c.get("complaintFeedbackType")
                f.diagnostic = squeeze(str(c.get("userAgent") or ""))
                facts.append(f)
    elif kind == "delivery" and isinstance(obj.get("delivery"), dict):
        d = obj["delivery"]
        for r in d.get("recipients") or []:
            if isinstance(r, str):
                f = Fact(
                    recipient=r, reason="delivered", action="delivered", source="amazon-ses", sender=sender
                )
                f.diagnostic = squeeze(str(d.get("smtpResponse") or ""))
                f.remote_ip = valid_ip(str(d.get("remoteMtaIp") or ""))
                facts.append(f)
    return facts
