# -*- test-case-name: tests.test_dkim -*-
"""
DKIM (RFC 6376): signing and verifying mail, with rsa-sha256 (RFC 8301)
and ed25519-sha256 (RFC 8463).

Sign outgoing mail with L{sign}, which returns the field to put at the top
of the message. Verify incoming mail with L{verify}, which checks the
signatures (up to a limit, within an optional time bound, its CPU work
optionally in a thread) and reports each as a L{DKIMResult};
L{authenticationResultsField} and L{formatAuthenticationResults} turn those
into an Authentication-Results field (RFC 8601), and
L{obscureForgedResults} renames received ones that claim to be ours.
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
    authenticationResultsField,
    formatAuthenticationResults,
    obscureForgedResults,
    parseAuthservID,
)
from gomail_twisted.dkim._sign import DEFAULT_SIGNED_HEADERS, sign
from gomail_twisted.dkim._verify import (
    DEFAULT_MAX_SIGNATURES,
    LookupTXT,
    RunInThread,
    verify,
)
from gomail_twisted.tags import TagList, TagSyntaxError, parseTags

__all__ = [
    "DEFAULT_MAX_SIGNATURES",
    "DEFAULT_SIGNED_HEADERS",
    "DKIMResult",
    "DKIMStatus",
    "KeyRecord",
    "KeyRecordError",
    "LookupTXT",
    "RunInThread",
    "TagList",
    "TagSyntaxError",
    "authenticationResultsField",
    "canonicalizeBody",
    "canonicalizeHeader",
    "formatAuthenticationResults",
    "generatePrivateKey",
    "keyRecordFor",
    "loadPrivateKey",
    "obscureForgedResults",
    "parseAuthservID",
    "parseKeyRecord",
    "parseTags",
    "sign",
    "verify",
]
