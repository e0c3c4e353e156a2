# -*- test-case-name: tests.test_sasl -*-
"""
The server side of the SASL mechanisms that carry a password, PLAIN
(RFC 4616) and LOGIN, as the AUTH commands of SMTP (RFC 4954), POP3
(RFC 5034) and IMAP (RFC 3501 6.2.2) use them: base64 responses, C{*} to
cancel, C{=} for an empty initial response.

No I/O: a protocol feeds each response line to an exchange and sends the
challenges it returns, until it returns the credentials.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Protocol


class SASLError(Exception):
    """
    The exchange cannot go on.
    """


class SASLCancelled(SASLError):
    """
    The client cancelled the exchange with C{*}.
    """


class SASLMalformed(SASLError):
    """
    A response was not base64, not UTF-8, or not what the mechanism
    expects.
    """


@dataclass(frozen=True)
class PasswordCredentials:
    """
    What a client sent to log in.

    @ivar mechanism: C{"PLAIN"} or C{"LOGIN"}.
    @ivar login: the authentication identity.
    @ivar password: the password; never shown by C{repr}.
    @ivar authorizationID: the identity to act as (PLAIN's authzid), or
        C{""} for the login itself.
    """

    mechanism: str
    login: str
    password: str = field(repr=False)
    authorizationID: str = ""


def decodeResponse(line: bytes) -> bytes:
    """
    Decode a client's response line.

    @param line: the line, without its line end.
    @return: the decoded bytes; C{=} is the empty response (RFC 4954 4).
    @raise SASLCancelled: for C{*}.
    @raise SASLMalformed: for anything that is not strict base64.
    """
    line = line.strip()
    if line == b"*":
        raise SASLCancelled()
    if line == b"=":
        return b""
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise SASLMalformed("response is not base64")


def encodeChallenge(challenge: bytes) -> bytes:
    """
    @param challenge: a challenge.
    @return: it in base64, as the 334 (SMTP) or C{+} (POP3, IMAP) line
        carries it.
    """
    return base64.b64encode(challenge)


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SASLMalformed("response is not UTF-8")


class SASLExchange(Protocol):
    """
    One mechanism's server side, step by step.
    """

    mechanism: str

    def step(self, response: bytes | None) -> bytes | PasswordCredentials:
        """
        @param response: the client's decoded response, or L{None} when it
            sent no initial response.
        @return: the next challenge to send, or the credentials at the end.
        @raise SASLMalformed: when the response is not the mechanism's.
        """


class PlainExchange:
    """
    PLAIN (RFC 4616): one response, C{[authzid] NUL authcid NUL passwd}.
    """

    mechanism = "PLAIN"

    def step(self, response: bytes | None) -> bytes | PasswordCredentials:
        """
        @param response: the decoded response, or L{None} when the client
            sent no initial response.
        @return: the next challenge, or the credentials.
        @raise SASLMalformed: when the response is not PLAIN's.
        """
        if response is None:
            return b""
        fields = _text(response).split("\0")
        if len(fields) != 3 or not fields[1]:
            raise SASLMalformed("malformed PLAIN response")
        return PasswordCredentials("PLAIN", fields[1], fields[2], fields[0])


class LoginExchange:
    """
    LOGIN: the user name, then the password, each asked for in turn.
    """

    mechanism = "LOGIN"

    def __init__(self) -> None:
        self._login: str | None = None

    def step(self, response: bytes | None) -> bytes | PasswordCredentials:
        """
        @param response: the decoded response, or L{None} when the client
            sent no initial response.
        @return: the next challenge, or the credentials.
        @raise SASLMalformed: when a response is not UTF-8.
        """
        if response is None:
            return b"Username:"
        if self._login is None:
            self._login = _text(response)
            return b"Password:"
        return PasswordCredentials("LOGIN", self._login, _text(response))


#: The mechanisms offered, in order of preference.
MECHANISMS = ("PLAIN", "LOGIN")


def newExchange(mechanism: str) -> SASLExchange | None:
    """
    @param mechanism: a mechanism name, in any case.
    @return: a new exchange for it, or L{None} when it is not offered.
    """
    name = mechanism.upper()
    if name == "PLAIN":
        return PlainExchange()
    if name == "LOGIN":
        return LoginExchange()
    return None
