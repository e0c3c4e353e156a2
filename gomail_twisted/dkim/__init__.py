# -*- test-case-name: tests.test_dkim -*-
"""
DKIM (RFC 6376): signing and verifying mail, with rsa-sha256 (RFC 8301)
and ed25519-sha256 (RFC 8463).

Sign outgoing mail with L{sign}, which returns the field to put at the top
of the message. Verify incoming mail with L{verify}, which checks every
signature and reports each as a L{DKIMResult}; L{formatAuthenticationResults}
turns those into an Authentication-Results field value (RFC 8601).
"""

from __future__ import annotations

from gomail_twisted.dkim._canon import canonicalizeBody, canonicalizeHeader
from gomail_twisted.dkim._keys import (
    KeyRecord,
    KeyRecordError,
    generatePrivateKey,
    keyRecordFor,
    loadPrivateKey,
    parseKeyRecord,
)
from gomail_twisted.dkim._results import (
    DKIMResult,
    DKIMStatus,
    formatAuthenticationResults,
    obscureForgedResults,
)
from gomail_twisted.dkim._sign import DEFAULT_SIGNED_HEADERS, sign
from gomail_twisted.dkim._verify import LookupTXT, verify
from gomail_twisted.tags import TagList, TagSyntaxError, parseTags

__all__ = [
    "DEFAULT_SIGNED_HEADERS",
    "DKIMResult",
    "DKIMStatus",
    "KeyRecord",
    "KeyRecordError",
    "LookupTXT",
    "TagList",
    "TagSyntaxError",
    "canonicalizeBody",
    "canonicalizeHeader",
    "formatAuthenticationResults",
    "generatePrivateKey",
    "keyRecordFor",
    "loadPrivateKey",
    "obscureForgedResults",
    "parseKeyRecord",
    "parseTags",
    "sign",
    "verify",
]
