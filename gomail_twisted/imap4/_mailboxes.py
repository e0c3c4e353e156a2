# -*- test-case-name: tests.test_imap4_server -*-
"""
Being written.
"""

from __future__ import annotations

from gomail_twisted.imap4._base import ServerBase


class MailboxCommands(ServerBase):
    """
    Being written.
    """
