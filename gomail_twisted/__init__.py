# -*- test-case-name: tests -*-
"""
gomail_twisted: email on Twisted.

  - L{gomail_twisted.smtp}: an ESMTP server whose every step calls the
    application's hooks, with a delivery adapter onto the mail store.
  - L{gomail_twisted.delivery}: C{sendMail}, a delivery client that
    reports what each receiving server said, and C{ESMTPSenderFactory}.
  - L{gomail_twisted.maildir}: the mail store the servers share (accounts,
    folders, messages with UIDs and flags), on Maildir.
  - L{gomail_twisted.users}: users, aliases and local domains in a file an
    operator edits, a C{twisted.cred} checker and realm over it.
  - L{gomail_twisted.address}: checking and normalizing addresses and
    domains.
  - L{gomail_twisted.connection}: the connection limits and timeouts every
    server shares.
  - L{gomail_twisted.dkim}: DKIM signing and verification (RFC 6376).
  - L{gomail_twisted.dns}: MX, address and TXT lookups, without threads.
  - L{parseTags}: the tag=value lists of DKIM (RFC 6376 3.2).
"""

from __future__ import annotations

from gomail_twisted._version import __version__
from gomail_twisted.tags import TagList, TagSyntaxError, parseTags

__all__ = ["TagList", "TagSyntaxError", "__version__", "parseTags"]
