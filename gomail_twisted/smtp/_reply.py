# -*- test-case-name: tests.test_smtp_reply -*-
"""
The SMTP server's replies: the L{SMTPReply} type (from
L{gomail_twisted.smtpreply}, shared with the delivery client) and the
replies the server gives in its own name.

A hook refuses a step by raising (or failing its Deferred with) an
L{SMTPReply}; these constants are the server's own refusals, ready made.
"""

from __future__ import annotations

from gomail_twisted.smtpreply import SMTPReply as SMTPReply

# Positive replies.
OK = SMTPReply(250, "2.0.0", "OK")
SENDER_OK = SMTPReply(250, "2.1.0", "Sender OK")
RECIPIENT_OK = SMTPReply(250, "2.1.5", "Recipient OK")
RESET_OK = SMTPReply(250, "2.0.0", "Reset OK")
START_DATA = SMTPReply(354, None, "End data with <CR><LF>.<CR><LF>")
READY_FOR_TLS = SMTPReply(220, "2.0.0", "Ready to start TLS")
AUTH_OK = SMTPReply(235, "2.7.0", "Authentication successful")
BYE = SMTPReply(221, "2.0.0", "Bye")
CANNOT_VRFY = SMTPReply(
    252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"
)


def helpReply(startTLS: bool, auth: bool) -> SMTPReply:
    """
    The reply to HELP (RFC 5321 4.1.1.8): the commands this session may
    use, naming STARTTLS (RFC 3207) and AUTH (RFC 4954) only when they are
    offered, as the EHLO keywords say.

    @param startTLS: STARTTLS is offered.
    @param auth: AUTH is offered.
    @return: a 214 reply; the four possible replies are made once.
    """
    return _HELP_REPLIES[startTLS, auth]


def _help(startTLS: bool, auth: bool) -> SMTPReply:
    commands = ["HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT"]
    commands += ["VRFY", "HELP"]
    if startTLS:
        commands.append("STARTTLS")
    if auth:
        commands.append("AUTH")
    return SMTPReply(214, "2.0.0", ["Commands: " + " ".join(commands), "See RFC 5321"])


_HELP_REPLIES = {
    (startTLS, auth): _help(startTLS, auth)
    for startTLS in (False, True)
    for auth in (False, True)
}

# Refusals and errors.
NOT_AVAILABLE = SMTPReply(421, "4.3.2", "Service not available, closing connection")
TOO_MANY_CONNECTIONS = SMTPReply(421, "4.7.0", "Too many connections, try again later")
TOO_MANY_ERRORS = SMTPReply(421, "4.7.0", "Too many errors, closing connection")
IDLE_TIMEOUT = SMTPReply(421, "4.4.2", "Idle timeout, closing connection")
SHUTTING_DOWN = SMTPReply(421, "4.3.2", "Server shutting down, closing connection")
#: A peer blocked by IP access control, refused instead of the greeting
#: (RFC 5321 3.1, 4.3.2; RFC 3463 X.7.1); sent without the enhanced code,
#: as the greeting always is (RFC 2034 3).
BLOCKED = SMTPReply(
    554, "5.7.1", "Access denied: too many failed logins or connections from you"
)
#: The answer to AUTH from a peer blocked while connected: the reply that
#: may close a session at any time (RFC 5321 3.8).
BLOCKED_CLOSING = SMTPReply(
    421, "4.7.1", "Access denied: too many failed logins, closing connection"
)
TEMPORARY_FAILURE = SMTPReply(451, "4.3.0", "Temporary failure, please try again")
TOO_MANY_RECIPIENTS = SMTPReply(452, "4.5.3", "Too many recipients")

COMMAND_UNRECOGNIZED = SMTPReply(500, "5.5.2", "Command unrecognized")
LINE_TOO_LONG = SMTPReply(500, "5.5.2", "Line too long")
SYNTAX_ERROR = SMTPReply(501, "5.5.2", "Syntax error in parameters or arguments")
BAD_SENDER_SYNTAX = SMTPReply(501, "5.1.7", "Bad sender address syntax")
BAD_RECIPIENT_SYNTAX = SMTPReply(501, "5.1.3", "Bad recipient address syntax")
NOT_IMPLEMENTED = SMTPReply(502, "5.5.1", "Command not implemented")
BAD_SEQUENCE = SMTPReply(503, "5.5.1", "Bad sequence of commands")
HELO_FIRST = SMTPReply(503, "5.5.1", "Send HELO or EHLO first")
NESTED_MAIL = SMTPReply(503, "5.5.1", "Sender already given")
NEED_MAIL = SMTPReply(503, "5.5.1", "Need MAIL before RCPT")
NEED_RCPT = SMTPReply(503, "5.5.1", "Need RCPT before DATA")
ALREADY_AUTHENTICATED = SMTPReply(503, "5.5.1", "Already authenticated")
ALREADY_TLS = SMTPReply(503, "5.5.1", "TLS already active")
UNKNOWN_PARAMETER = SMTPReply(555, "5.5.4", "Unsupported MAIL/RCPT parameter")
BAD_PARAMETER = SMTPReply(501, "5.5.4", "Invalid parameter value")
UNKNOWN_MECHANISM = SMTPReply(504, "5.5.4", "Unrecognized authentication mechanism")
AUTH_CANCELLED = SMTPReply(501, "5.0.0", "Authentication cancelled")
AUTH_BAD_BASE64 = SMTPReply(501, "5.5.2", "Cannot decode response")
AUTH_FAILED = SMTPReply(535, "5.7.8", "Authentication credentials invalid")
ENCRYPTION_REQUIRED = SMTPReply(
    538, "5.7.11", "Encryption required for requested authentication mechanism"
)
MUST_ISSUE_STARTTLS = SMTPReply(530, "5.7.0", "Must issue a STARTTLS command first")
NEED_SMTPUTF8 = SMTPReply(
    553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter"
)
UNKNOWN_RECIPIENT = SMTPReply(550, "5.1.1", "No such recipient here")
RELAY_DENIED = SMTPReply(554, "5.7.1", "Relay access denied")
MESSAGE_TOO_BIG = SMTPReply(552, "5.3.4", "Message size exceeds fixed limit")
DATA_LINE_TOO_LONG = SMTPReply(500, "5.5.2", "Message line too long")
BARE_LINE_ENDING = SMTPReply(
    550, "5.6.0", "Message contains bare CR or LF; lines must end with CRLF"
)
AUTH_TEMPORARY_FAILURE = SMTPReply(454, "4.7.0", "Temporary authentication failure")
