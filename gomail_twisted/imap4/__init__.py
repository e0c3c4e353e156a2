"""
The IMAP4rev1 server (RFC 3501), being built: the pieces are private
modules for now and the package exports nothing yet.
"""

from __future__ import annotations

__all__: list[str] = []
