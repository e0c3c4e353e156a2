# -*- test-case-name: tests.test_queue_dsn -*-
"""
Delivery status notifications (RFC 3464): the message the sender gets when
the queue gives up on recipients, or is still trying after a while.

It is a C{multipart/report; report-type=delivery-status} (RFC 6522) of
three parts: a text for people, the C{message/delivery-status} fields (one
block for the message, one per recipient), and the original message's
header (C{text/rfc822-headers}), built with the standard library's
C{email} package.
"""

from __future__ import annotations

import datetime
import email.policy
import email.utils
from collections.abc import Sequence
from email.message import EmailMessage, Message
from typing import Literal

from gomail_twisted.message import splitHeaderBlock
from gomail_twisted.queue._entry import QueuedMessage, RecipientState

__all__ = ["buildReport", "dsnStatus"]

#: C{"failed"}: the queue gave up on the recipients; C{"delayed"}: it is
#: still trying (RFC 3464 2.3.3).
Action = Literal["failed", "delayed"]


def _date(when: float) -> str:
    return email.utils.format_datetime(
        datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
    )


def dsnStatus(recipient: RecipientState, action: Action) -> str:
    """
    The C{Status} of a recipient (RFC 3464 2.3.4, codes of RFC 3463).

    @param recipient: the recipient.
    @param action: what the report says of it.
    @return: the server's enhanced code when it fits the action; otherwise
        one derived from the reply code, or C{4.4.7} (delivery time
        expired) for a recipient that failed by expiry, or C{5.0.0} /
        C{4.0.0}.
    """
    if action == "failed" and recipient.expired:
        return "4.4.7"
    wanted = "5" if action == "failed" else "4"
    enhanced = recipient.enhanced
    if enhanced and enhanced[0] == wanted:
        return enhanced
    return f"{wanted}.0.0"


def _diagnostic(recipient: RecipientState) -> str | None:
    if recipient.code is None:
        return None
    return f"smtp; {recipient.reply}"


def _text(
    kind: Action,
    message: QueuedMessage,
    recipients: Sequence[RecipientState],
    hostname: str,
    retryUntil: float,
) -> str:
    lines = [f"This is the mail system at host {hostname}.", ""]
    if kind == "failed":
        lines += [
            "Your message could not be delivered to one or more recipients.",
            "It is attached below (its header only).",
        ]
    else:
        lines += [
            "Your message could not be delivered yet to one or more",
            "recipients. It will be tried again until "
            f"{_date(retryUntil)}; you need not send it again.",
        ]
    lines.append("")
    for r in recipients:
        reason = r.reply or "no reply"
        if r.expired:
            reason = f"gave up after {r.attempts} attempts: {reason}"
        host = f" (from {r.remoteHost})" if r.remoteHost else ""
        lines.append(f"<{r.address}>{host}: {reason}")
    lines += ["", f"Queue identifier: {message.queueID}", ""]
    return "\r\n".join(lines)


#: Fields are not folded (up to the 998 octets of RFC 5322 2.1.1), so that
#: a long Diagnostic-Code reads as the server wrote it.
_STATUS_POLICY = email.policy.SMTP.clone(max_line_length=998)


def _block(fields: Sequence[tuple[str, str | None]]) -> Message:
    block = Message(policy=_STATUS_POLICY)
    for name, value in fields:
        if value is not None:
            block[name] = value
    return block


def buildReport(
    kind: Action,
    message: QueuedMessage,
    recipients: Sequence[RecipientState],
    original: bytes,
    hostname: str,
    now: float,
    retryUntil: float,
) -> bytes:
    """
    Build a delivery status notification (RFC 3464) for the message's
    sender.

    @param kind: C{"failed"} or C{"delayed"}.
    @param message: the queued message.
    @param recipients: the recipients the report is about.
    @param original: the message itself, whose header is attached.
    @param hostname: our host name (C{Reporting-MTA}, the author's domain).
    @param now: the report's date.
    @param retryUntil: when the queue gives up (C{Will-Retry-Until}, in
        delay reports).
    @return: the report, lines ending in CRLF; it is sent with the null
        reverse-path (RFC 3464 2, RFC 5321 4.5.5).
    """
    report = EmailMessage(policy=email.policy.SMTP)
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{hostname}>"
    report["To"] = message.sender
    report["Subject"] = (
        "Undelivered Mail Returned to Sender"
        if kind == "failed"
        else "Delayed Mail (still being retried)"
    )
    report["Date"] = _date(now)
    report["Message-ID"] = email.utils.make_msgid(domain=hostname)
    # RFC 3834 5: an automatic reply, not to be answered automatically.
    report["Auto-Submitted"] = "auto-replied"
    report["MIME-Version"] = "1.0"
    report.set_content(_text(kind, message, recipients, hostname, retryUntil))
    report.make_mixed()
    report.set_type("multipart/report")
    report.set_param("report-type", "delivery-status")

    status = EmailMessage(policy=email.policy.SMTP)
    status["Content-Type"] = "message/delivery-status"
    blocks: list[Message | str] = [
        _block(
            [
                ("Reporting-MTA", f"dns; {hostname}"),
                ("X-Queue-ID", message.queueID),
                ("Arrival-Date", _date(message.created)),
            ]
        )
    ]
    for r in recipients:
        blocks.append(
            _block(
                [
                    ("Final-Recipient", f"rfc822; {r.address}"),
                    ("Action", kind),
                    ("Status", dsnStatus(r, kind)),
                    ("Remote-MTA", f"dns; {r.remoteHost}" if r.remoteHost else None),
                    ("Diagnostic-Code", _diagnostic(r)),
                    (
                        "Last-Attempt-Date",
                        _date(r.lastAttempt) if r.lastAttempt is not None else None,
                    ),
                    (
                        "Will-Retry-Until",
                        _date(retryUntil) if kind == "delayed" else None,
                    ),
                ]
            )
        )
    status.set_payload(blocks)
    report.attach(status)

    header = splitHeaderBlock(original)[0] + b"\r\n"
    headers = EmailMessage(policy=email.policy.SMTP)
    headers["Content-Type"] = "text/rfc822-headers"
    if header.isascii():
        headers.set_payload(header.decode("ascii"))
    else:
        headers["Content-Transfer-Encoding"] = "8bit"
        # Undecoded, so that the generator writes the bytes back as they were.
        headers.set_payload(header.decode("ascii", "surrogateescape"))
    report.attach(headers)
    return report.as_bytes(policy=_STATUS_POLICY)
