# -*- test-case-name: tests.test_mutf7 -*-
"""
IMAP's modified UTF-7 (RFC 3501 5.1.3), the form in which mailbox names
travel on the wire and, in Maildir++ as Dovecot lays it out, sit on disk.

It is UTF-7 (RFC 2152) with three changes:

  - every printable US-ASCII character (0x20-0x7E) stands for itself, and
    only those do: anything else, control characters included, is shifted;
  - C{&} shifts into modified BASE64 (the alphabet of RFC 4648 with C{,}
    in place of C{/}, unpadded) and C{-} always shifts back; C{&-} is C{&};
  - the BASE64 encodes UTF-16 (big-endian), so characters past U+FFFF are
    a surrogate pair inside one shift.

L{encode} gives the one canonical form of a name and L{decode} accepts only
canonical forms: whatever it accepts, L{encode} gives back unchanged, so two
different encodings never name the same mailbox.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["decode", "encode"]

_BASE64 = re.compile(r"[A-Za-z0-9+,]+\Z")


def _shift(run: str) -> str:
    """
    Encode a run of characters that cannot stand for themselves.

    @param run: one or more characters, none of them printable US-ASCII.
    @return: the run as C{&<modified BASE64>-}.
    @raise ValueError: the run holds a lone surrogate.
    """
    try:
        utf16 = run.encode("utf-16-be")
    except UnicodeEncodeError:
        raise ValueError(f"lone surrogate in {run!r}")
    text = base64.b64encode(utf16).rstrip(b"=").replace(b"/", b",")
    return "&" + text.decode("ascii") + "-"


def encode(name: str) -> str:
    """
    Encode a mailbox name in modified UTF-7 (RFC 3501 5.1.3).

    @param name: any text without lone surrogates.
    @return: its canonical modified UTF-7 form, printable US-ASCII only.
    @raise ValueError: C{name} holds a lone surrogate.
    """
    out: list[str] = []
    run: list[str] = []
    for char in name:
        if " " <= char <= "~":
            if run:
                out.append(_shift("".join(run)))
                run.clear()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    if run:
        out.append(_shift("".join(run)))
    return "".join(out)


def _unshift(text: str) -> str:
    """
    Decode the modified BASE64 between a C{&} and its C{-}.

    @param text: the BASE64, not empty.
    @return: the characters it encodes.
    @raise ValueError: the BASE64 is malformed, not canonical, or encodes a
        lone surrogate or a printable US-ASCII character.
    """
    if not _BASE64.match(text):
        raise ValueError(f"bad modified BASE64 {text!r}")
    # 16-bit units in 6-bit characters: 3, 6 or 8 characters per 1, 2 or 3
    # units; any other length leaves a partial unit or a whole spare char.
    if len(text) % 8 not in (0, 3, 6):
        raise ValueError(f"modified BASE64 {text!r} is not whole UTF-16 units")
    standard = text.replace(",", "/")
    try:
        utf16 = base64.b64decode(standard + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise ValueError(f"bad modified BASE64 {text!r}")
    if base64.b64encode(utf16).rstrip(b"=").decode("ascii") != standard:
        raise ValueError(f"modified BASE64 {text!r} has non-zero spare bits")
    try:
        decoded = utf16.decode("utf-16-be")
    except UnicodeDecodeError:
        raise ValueError(f"modified BASE64 {text!r} holds a lone surrogate")
    for char in decoded:
        if " " <= char <= "~":
            raise ValueError(
                f"modified BASE64 {text!r} encodes {char!r}, which has a direct form"
            )
    return decoded


def decode(name: str) -> str:
    """
    Decode a mailbox name from modified UTF-7 (RFC 3501 5.1.3).

    Only the canonical form is accepted: no null shifts (C{-&} inside a run
    of shifted characters; two adjacent shifts must be one), no shifted
    character that could stand for itself, no padding, no spare bits.

    @param name: the encoded name.
    @return: the name.
    @raise ValueError: C{name} is not canonical modified UTF-7: it has
        characters outside printable US-ASCII, an unterminated or malformed
        shift, or encodes a lone surrogate.
    """
    out: list[str] = []
    index = 0
    afterShift = False
    while index < len(name):
        char = name[index]
        if not " " <= char <= "~":
            raise ValueError(f"{char!r} at {index} is not printable US-ASCII")
        if char != "&":
            out.append(char)
            afterShift = False
            index += 1
            continue
        end = name.find("-", index + 1)
        if end < 0:
            raise ValueError(f"unterminated shift at {index}")
        if end == index + 1:
            out.append("&")
            afterShift = False
        else:
            if afterShift:
                raise ValueError(f"adjacent shifts at {index} must be merged")
            out.append(_unshift(name[index + 1 : end]))
            afterShift = True
        index = end + 1
    return "".join(out)
