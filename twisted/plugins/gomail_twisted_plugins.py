# -*- test-case-name: tests.test_tap_smtp,tests.test_tap_gomail -*-
"""
The C{twistd} plugins of gomail_twisted.
"""

from __future__ import annotations

from twisted.application.service import ServiceMaker

gomailSMTP = ServiceMaker(
    "gomail-smtp",
    "gomail_twisted.tap.smtp",
    "An ESMTP server delivering to Maildir folders",
    "gomail-smtp",
)
gomailPOP3 = ServiceMaker(
    "gomail-pop3",
    "gomail_twisted.tap.pop3",
    "A POP3 server for the users of a users file, over the Maildir store",
    "gomail-pop3",
)
gomailIMAP4 = ServiceMaker(
    "gomail-imap4",
    "gomail_twisted.tap.imap4",
    "An IMAP4 server for the users of a users file, over the Maildir store",
    "gomail-imap4",
)
gomail = ServiceMaker(
    "gomail",
    "gomail_twisted.tap.gomail",
    "The whole mail server: SMTP, submission, POP3, IMAP and the queue",
    "gomail",
)
