# -*- test-case-name: tests -*-
"""
gomail_twisted: email on Twisted.

  - L{gomail_twisted.smtp}: an ESMTP server whose every step calls the
    application's hooks, a Maildir backend, and C{sendMail}, a delivery
    client that reports what each receiving server said.
  - L{gomail_twisted.dkim}: DKIM signing and verification (RFC 6376).
  - L{gomail_twisted.dns}: MX, address and TXT lookups off the reactor
    thread.
  - L{parseTags}: the tag=value lists of DKIM (RFC 6376 3.2).
"""

from __future__ import annotations

from gomail_twisted._version import __version__
from gomail_twisted.tags import TagList, TagSyntaxError, parseTags

__all__ = ["TagList", "TagSyntaxError", "__version__", "parseTags"]
