# -*- test-case-name: tests -*-
"""
gomail_twisted: email on Twisted.

An ESMTP server (L{gomail_twisted.smtp}) whose every step calls the
application's hooks, with more protocols, DKIM and a delivery client built on
the same pattern.
"""

from __future__ import annotations

from gomail_twisted._version import __version__
from gomail_twisted.tags import TagList, TagSyntaxError, parseTags

__all__ = ["TagList", "TagSyntaxError", "__version__", "parseTags"]
