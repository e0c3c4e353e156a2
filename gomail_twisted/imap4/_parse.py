# -*- test-case-name: tests.test_imap4_parse -*-
"""
The IMAP4rev1 command parser (RFC 3501 6, grammar in 9), without I/O:
a command's lines and literals in, a L{Command} or a L{ParseError} out.

Besides RFC 3501 it reads the syntax of LITERAL+ (RFC 7888), SASL-IR
(RFC 4959), LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), CONDSTORE
(RFC 7162), MOVE (RFC 6851), UIDPLUS (RFC 4315), ENABLE (RFC 5161), ID
(RFC 2971), UNSELECT (RFC 3691), IDLE (RFC 2177), NAMESPACE (RFC 2342)
and SPECIAL-USE (RFC 6154); with UTF8=ACCEPT enabled (RFC 6855), quoted
strings may carry UTF-8 and mailbox names are UTF-8.

The protocol calls L{announcedLiteral} on every line it reads, to learn
whether a literal follows; L{appendMessageNext} when one does, to learn
whether it is APPEND's message (which it may keep out of memory); and
L{parseCommand} once the command is whole.

Every error text quotes at most a few dozen octets of the client's input,
as printable US-ASCII, since it goes back on a response line.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Sequence

from gomail_twisted.imap4._commands import (
    MAX_NUMBER,
    Append,
    Arguments,
    Authenticate,
    Command,
    Enable,
    Expunge,
    Id,
    ListMailboxes,
    Login,
    Mailbox,
    ParseError,
    Rename,
    Select,
    Status,
    Store,
    Transfer,
)
from gomail_twisted.imap4._parsefetch import fetchArguments
from gomail_twisted.imap4._parsereader import (
    ATOM,
    DQUOTE,
    LBRACE,
    LPAREN,
    MAX_MODSEQ,
    RPAREN,
    SP,
    Reader,
    readTag,
    show,
)
from gomail_twisted.imap4._parsesearch import MAX_DEPTH, MONTHS, searchArguments
from gomail_twisted.maildir.interfaces import FlagChange

__all__ = ["MAX_DEPTH", "announcedLiteral", "appendMessageNext", "parseCommand"]

_Parser = Callable[[Reader], Arguments]

# A literal's announcement at the end of a line (RFC 3501 4.3, RFC 7888).
_ANNOUNCEMENT = re.compile(rb"\{([0-9]+)(\+?)\}\Z")

# SASL-IR's initial response (RFC 4959 7): base64, or "=" for an empty one.
_BASE64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_INITIAL_RESPONSE = re.compile(rb"[A-Za-z0-9+/=]+")

_DATE_TIME = re.compile(
    rb'"( [0-9]|[0-9]{1,2})-([A-Za-z]{3})-([0-9]{4}) '
    rb'([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)

#: RFC 2971 3.3: at most 30 field-value pairs.
_MAX_ID_FIELDS = 30

#: STATUS items (RFC 3501 6.3.10, RFC 7162 3.1.9, RFC 8438).
_STATUS_ITEMS = frozenset(
    {
        b"MESSAGES",
        b"RECENT",
        b"UIDNEXT",
        b"UIDVALIDITY",
        b"UNSEEN",
        b"HIGHESTMODSEQ",
        b"SIZE",
    }
)

#: LIST selection options (RFC 5258 3.1, RFC 6154 5.2).
_SELECTION_OPTIONS = frozenset(
    {b"SUBSCRIBED", b"REMOTE", b"RECURSIVEMATCH", b"SPECIAL-USE"}
)
#: LIST return options besides STATUS (RFC 5258 3.2, RFC 6154 5.2).
_RETURN_OPTIONS = frozenset({b"SUBSCRIBED", b"CHILDREN", b"SPECIAL-USE"})

_STORE_ITEMS = {
    b"FLAGS": (FlagChange.REPLACE, False),
    b"FLAGS.SILENT": (FlagChange.REPLACE, True),
    b"+FLAGS": (FlagChange.ADD, False),
    b"+FLAGS.SILENT": (FlagChange.ADD, True),
    b"-FLAGS": (FlagChange.REMOVE, False),
    b"-FLAGS.SILENT": (FlagChange.REMOVE, True),
}


def announcedLiteral(line: bytes) -> tuple[int, bool] | None:
    """
    Whether a line announces a literal at its end (RFC 3501 4.3: C{{n}};
    RFC 7888: C{{n+}}, which the client sends without waiting).

    Called on every line, so it looks only at the line's end.

    @param line: the line, without its CRLF.
    @return: the literal's size and whether it is synchronizing (C{{n}}),
        or L{None}.
    @raise ParseError: the size has more than 10 digits or is above
        4294967295; with the line's tag when it starts with one.
    """
    if not line.endswith(b"}"):
        return None
    start = line.rfind(b"{")
    if start < 0:
        return None
    found = _ANNOUNCEMENT.match(line, start)
    if found is None:
        return None
    digits = found.group(1)
    if len(digits) > 10 or int(digits) > MAX_NUMBER:
        raise ParseError(readTag(line), f"Literal too large: {show(digits)} octets")
    return int(digits), not found.group(2)


def parseCommand(
    lines: Sequence[bytes], literals: Sequence[object], *, utf8: bool = False
) -> Command:
    """
    Parse a whole command.

    @param lines: the command's lines without their CRLF: the first, and
        one more after each literal.
    @param literals: the literals, each announced at the end of the line
        before it: L{bytes} of the announced size, except APPEND's message,
        which may be any object the protocol keeps in its place.
    @param utf8: RFC 6855 UTF8=ACCEPT is enabled.
    @return: the command.
    @raise ParseError: the command is malformed, unknown, or uses what
        this server does not support.
    @raise ValueError: there is not one more line than literals.
    """
    if len(lines) != len(literals) + 1:
        raise ValueError("a command has one more line than literals")
    reader = Reader(lines, literals, utf8)
    name, uid, parse = _start(reader)
    arguments = parse(reader)
    reader.expectEnd()
    assert reader.tag is not None
    return Command(reader.tag, name, arguments, uid)


def appendMessageNext(lines: Sequence[bytes], literals: Sequence[object]) -> bool:
    """
    Whether the literal announced at the end of the last line is APPEND's
    message: the command so far is C{tag APPEND mailbox [flag-list]
    [date-time]} and the announcement (RFC 3501 6.3.11).

    The mailbox name is not decoded here (its encoding depends on
    UTF8=ACCEPT): L{parseCommand} checks it once the command is whole.

    @param lines: the command's lines so far, the last one ending with the
        announcement.
    @param literals: the literals read so far.
    @return: the answer; L{False} for anything malformed.
    """
    if not lines or len(lines) != len(literals) + 1:
        return False
    reader = Reader(lines, literals, True)
    try:
        name, uid, _ = _start(reader)
        if name != "APPEND" or uid:
            return False
        _appendHead(reader, decode=False)
    except ParseError:
        return False
    return reader.literalNext()


def _start(reader: Reader) -> tuple[str, bool, _Parser]:
    """
    Read the tag, the command's name and any C{UID} prefix.

    @param reader: the position, at the line's start.
    @return: the name in upper case, whether C{UID} came first, and the
        parser of the arguments.
    @raise ParseError: the tag is missing or invalid (without a tag), or
        the command is unknown.
    """
    line = reader.line
    tag = readTag(line)
    if tag is None:
        if not line or line[0] == SP:
            raise ParseError(None, "Missing tag")
        raise ParseError(None, f"Invalid tag: {show(line.split(b' ', 1)[0])}")
    reader.tag = tag
    reader.pos = len(tag)
    reader.space("command")
    word = reader.atom("command")
    name = word.upper()
    if name == b"UID":
        reader.space("command after UID")
        word = reader.atom("command after UID")
        name = word.upper()
        parse = _UID_COMMANDS.get(name)
        if parse is None:
            reader.fail(f"UID cannot be used with {show(word)}")
        return name.decode("ascii"), True, parse
    parse = _COMMANDS.get(name)
    if parse is None:
        reader.fail(f"Unknown command {show(word)}")
    return name.decode("ascii"), False, parse


def _noArguments(reader: Reader) -> None:
    """CAPABILITY, NOOP, LOGOUT, ...: nothing follows the name."""
    return None


def _authenticate(reader: Reader) -> Authenticate:
    """C{AUTHENTICATE SP auth-type [SP initial-response]} (RFC 4959 7)."""
    reader.space("mechanism")
    mechanism = reader.atom("mechanism").upper().decode("ascii")
    initial = None
    if reader.skip(SP):
        start = reader.pos
        initial = reader.match(_INITIAL_RESPONSE)
        if initial is None or (initial != b"=" and not _BASE64.fullmatch(initial)):
            reader.pos = start
            reader.missingOr("initial response")
    return Authenticate(mechanism, initial)


def _login(reader: Reader) -> Login:
    """C{LOGIN SP userid SP password} (RFC 3501 6.2.3)."""
    reader.space("user name")
    user = reader.text(reader.astring("user name"), "user name")
    reader.space("password")
    return Login(user, reader.text(reader.astring("password"), "password"))


def _select(reader: Reader, readOnly: bool = False) -> Select:
    """
    C{SELECT SP mailbox [SP "(" select-param *(SP select-param) ")"]}
    (RFC 3501 6.3.1, RFC 4466 2.1): the one parameter known is
    C{CONDSTORE} (RFC 7162 3.1.8).
    """
    reader.space("mailbox name")
    mailbox = reader.mailbox()
    condstore = False
    if reader.skip(SP):
        reader.expect(LPAREN, '"("')
        while True:
            word = reader.atom("parameter")
            if word.upper() != b"CONDSTORE":
                reader.fail(f"Unknown parameter {show(word)}")
            condstore = True
            if not reader.skip(SP):
                break
        reader.expect(RPAREN, '")"')
    return Select(mailbox, readOnly, condstore)


def _examine(reader: Reader) -> Select:
    """C{EXAMINE}: L{_select}, read-only (RFC 3501 6.3.2)."""
    return _select(reader, True)


def _mailbox(reader: Reader) -> Mailbox:
    """CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE: C{SP mailbox}."""
    reader.space("mailbox name")
    return Mailbox(reader.mailbox())


def _rename(reader: Reader) -> Rename:
    """C{RENAME SP mailbox SP mailbox} (RFC 3501 6.3.5)."""
    reader.space("mailbox name")
    old = reader.mailbox()
    reader.space("new mailbox name")
    return Rename(old, reader.mailbox("new mailbox name"))


def _options(reader: Reader, known: frozenset[bytes], what: str) -> frozenset[str]:
    """
    A parenthesised list of options, possibly empty, the position at
    C{(}: LIST's selection options (RFC 5258 3.1).

    @param known: the options known.
    @param what: their name, for the error text.
    @return: the options in upper case.
    @raise ParseError: the list is malformed, or holds an unknown option.
    """
    reader.expect(LPAREN, '"("')
    options = set()
    if not reader.skip(RPAREN):
        while True:
            word = reader.atom(what)
            if word.upper() not in known:
                reader.fail(f"Unknown {what} {show(word)}")
            options.add(word.upper().decode("ascii"))
            if not reader.skip(SP):
                break
        reader.expect(RPAREN, '")"')
    return frozenset(options)


def _statusItems(reader: Reader) -> tuple[str, ...]:
    """
    C{"(" status-att *(SP status-att) ")"} (RFC 3501 9), the position at
    C{(}.

    @return: the items in upper case, as given.
    @raise ParseError: the list is malformed or empty, or holds an
        unknown item.
    """
    reader.expect(LPAREN, '"("')
    items = []
    while True:
        word = reader.atom("status item")
        if word.upper() not in _STATUS_ITEMS:
            reader.fail(f"Unknown STATUS item {show(word)}")
        items.append(word.upper().decode("ascii"))
        if not reader.skip(SP):
            break
    reader.expect(RPAREN, '")"')
    return tuple(items)


def _list(reader: Reader) -> ListMailboxes:
    """
    C{LIST [SP list-select-opts] SP mailbox SP mbox-or-pat [SP
    list-return-opts]} (RFC 3501 6.3.8, RFC 5258 6, RFC 5819 4).
    """
    reader.space("reference")
    extended = False
    selection: frozenset[str] = frozenset()
    if reader.peek() == LPAREN:
        extended = True
        selection = _options(reader, _SELECTION_OPTIONS, "selection option")
        # RFC 5258 3.1: RECURSIVEMATCH modifies another option.
        if "RECURSIVEMATCH" in selection and not (
            selection - {"RECURSIVEMATCH", "REMOTE"}
        ):
            reader.fail("RECURSIVEMATCH needs another selection option")
        reader.space("reference")
    reference = reader.listMailbox("reference", wildcards=False)
    reader.space("mailbox pattern")
    if reader.skip(LPAREN):
        extended = True
        patterns = [reader.listMailbox("mailbox pattern")]
        while reader.skip(SP):
            patterns.append(reader.listMailbox("mailbox pattern"))
        reader.expect(RPAREN, '")"')
    else:
        patterns = [reader.listMailbox("mailbox pattern")]
    returns: set[str] = set()
    statusItems: tuple[str, ...] = ()
    if reader.skip(SP):
        extended = True
        word = reader.atom("RETURN")
        if word.upper() != b"RETURN":
            reader.fail(f"Expected RETURN instead of: {show(word)}")
        reader.space("return options")
        reader.expect(LPAREN, '"("')
        while not reader.skip(RPAREN):
            if returns:
                reader.space("return option")
            word = reader.atom("return option")
            name = word.upper()
            if name == b"STATUS":
                reader.space("status items")
                statusItems = _statusItems(reader)
            elif name not in _RETURN_OPTIONS:
                reader.fail(f"Unknown return option {show(word)}")
            returns.add(name.decode("ascii"))
    return ListMailboxes(
        reference,
        tuple(patterns),
        selection=selection,
        returns=frozenset(returns),
        statusItems=statusItems,
        extended=extended,
    )


def _lsub(reader: Reader) -> ListMailboxes:
    """C{LSUB SP mailbox SP list-mailbox} (RFC 3501 6.3.9)."""
    reader.space("reference")
    reference = reader.listMailbox("reference", wildcards=False)
    reader.space("mailbox pattern")
    pattern = reader.listMailbox("mailbox pattern")
    return ListMailboxes(reference, (pattern,), lsub=True)


def _status(reader: Reader) -> Status:
    """C{STATUS SP mailbox SP "(" status-att *(SP status-att) ")"}."""
    reader.space("mailbox name")
    mailbox = reader.mailbox()
    reader.space("status items")
    return Status(mailbox, _statusItems(reader))


def _dateTime(reader: Reader) -> datetime.datetime:
    """
    A C{date-time} (RFC 3501 9): C{"dd-Mon-yyyy hh:mm:ss +zzzz"}, the day
    space-padded or (as clients send it) in one digit.

    @return: the date and time, aware.
    @raise ParseError: no valid date-time comes next.
    """
    found = _DATE_TIME.match(reader.line, reader.pos)
    if found is not None:
        day, month, year, hour, minute, second, sign, zoneH, zoneM = found.groups()
        monthNumber = MONTHS.get(month.upper())
        if monthNumber is not None and int(zoneM) < 60:
            offset = datetime.timedelta(hours=int(zoneH), minutes=int(zoneM))
            try:
                value = datetime.datetime(
                    int(year),
                    monthNumber,
                    int(day),
                    int(hour),
                    int(minute),
                    int(second),
                    tzinfo=datetime.timezone(-offset if sign == b"-" else offset),
                )
            except ValueError:
                pass
            else:
                reader.pos = found.end()
                return value
    reader.fail(f"Invalid date-time: {reader.rest()}")


def _appendHead(
    reader: Reader, decode: bool = True
) -> tuple[str, tuple[str, ...], datetime.datetime | None]:
    """
    APPEND's arguments up to its message: C{SP mailbox [SP flag-list] [SP
    date-time] SP}, leaving the position at the message's C{{}.

    @param decode: decode the mailbox name (else only read it).
    @return: the mailbox, the flags and the date.
    @raise ParseError: they are malformed, or no literal comes next.
    """
    reader.space("mailbox name")
    if decode:
        mailbox = reader.mailbox()
    else:
        reader.astring("mailbox name")
        mailbox = ""
    reader.space("message literal")
    flags: tuple[str, ...] = ()
    if reader.peek() == LPAREN:
        flags = reader.flagList()
        reader.space("message literal")
    date = None
    if reader.peek() == DQUOTE:
        start = reader.pos
        reader.quoted()
        if reader.pos >= len(reader.line):
            reader.fail("APPEND message must be a literal")
        reader.pos = start
        date = _dateTime(reader)
        reader.space("message literal")
    if reader.peek() != LBRACE:
        if reader.pos >= len(reader.line):
            reader.fail("Missing message literal")
        reader.fail("APPEND message must be a literal")
    return mailbox, flags, date


def _append(reader: Reader) -> Append:
    """
    C{APPEND SP mailbox [SP flag-list] [SP date-time] SP literal} (RFC
    3501 6.3.11); the message may be an empty literal (the server
    decides).
    """
    mailbox, flags, date = _appendHead(reader)
    return Append(mailbox, flags, date, reader.literal(anyObject=True))


def _store(reader: Reader) -> Store:
    """
    C{STORE SP sequence-set [SP store-modifiers] SP store-att-flags} (RFC
    3501 9, RFC 7162 3.1.3): the flags in a list or side by side.
    """
    reader.space("sequence set")
    numbers = reader.sequenceSet()
    reader.space("STORE item")
    unchangedSince = None
    if reader.skip(LPAREN):
        word = reader.atom("STORE modifier")
        if word.upper() != b"UNCHANGEDSINCE":
            reader.fail(f"Unknown STORE modifier {show(word)}")
        reader.space("mod-sequence")
        unchangedSince = reader.number("mod-sequence", MAX_MODSEQ)
        reader.expect(RPAREN, '")"')
        reader.space("STORE item")
    word = reader.atom("STORE item")
    item = _STORE_ITEMS.get(word.upper())
    if item is None:
        reader.fail(f"Unknown STORE item {show(word)}")
    reader.space("flags")
    if reader.peek() == LPAREN:
        flags = reader.flagList()
    else:
        flagList = [reader.flag()]
        while reader.skip(SP):
            flagList.append(reader.flag())
        flags = tuple(flagList)
    change, silent = item
    return Store(numbers, change, silent, flags, unchangedSince)


def _transfer(reader: Reader) -> Transfer:
    """COPY and MOVE: C{SP sequence-set SP mailbox} (RFC 6851 3.1)."""
    reader.space("sequence set")
    numbers = reader.sequenceSet()
    reader.space("mailbox name")
    return Transfer(numbers, reader.mailbox())


def _uidExpunge(reader: Reader) -> Expunge:
    """C{UID EXPUNGE SP sequence-set} (RFC 4315 2.1)."""
    reader.space("sequence set")
    return Expunge(reader.sequenceSet())


def _enable(reader: Reader) -> Enable:
    """C{ENABLE 1*(SP capability)} (RFC 5161 4)."""
    reader.space("capability")
    capabilities = [reader.atom("capability")]
    while reader.skip(SP):
        capabilities.append(reader.atom("capability"))
    return Enable(tuple(c.upper().decode("ascii") for c in capabilities))


def _id(reader: Reader) -> Id:
    """
    C{ID SP ("(" *(string SP nstring) ")" / NIL)} (RFC 2971 4), at most
    30 pairs; the strings are informational, so octets that are not
    UTF-8 are replaced rather than refused.
    """
    reader.space("ID parameters")
    if not reader.skip(LPAREN):
        start = reader.pos
        word = reader.match(ATOM)
        if word is None or word.upper() != b"NIL":
            reader.pos = start
            reader.missingOr("ID parameters")
        return Id(None)
    fields: list[tuple[str, str | None]] = []
    while not reader.skip(RPAREN):
        if fields:
            reader.space("ID field")
        if len(fields) == _MAX_ID_FIELDS:
            reader.fail("Too many ID fields")
        name = reader.string("ID field")
        reader.space("ID value")
        value = reader.nstring("ID value")
        fields.append(
            (
                name.decode("utf-8", "replace"),
                None if value is None else value.decode("utf-8", "replace"),
            )
        )
    return Id(tuple(fields))


_COMMANDS: dict[bytes, _Parser] = {
    **dict.fromkeys(
        (
            b"CAPABILITY",
            b"NOOP",
            b"LOGOUT",
            b"STARTTLS",
            b"CHECK",
            b"CLOSE",
            b"EXPUNGE",
            b"UNSELECT",
            b"IDLE",
            b"NAMESPACE",
        ),
        _noArguments,
    ),
    b"AUTHENTICATE": _authenticate,
    b"LOGIN": _login,
    b"SELECT": _select,
    b"EXAMINE": _examine,
    b"CREATE": _mailbox,
    b"DELETE": _mailbox,
    b"SUBSCRIBE": _mailbox,
    b"UNSUBSCRIBE": _mailbox,
    b"RENAME": _rename,
    b"LIST": _list,
    b"LSUB": _lsub,
    b"STATUS": _status,
    b"APPEND": _append,
    b"SEARCH": searchArguments,
    b"FETCH": fetchArguments,
    b"STORE": _store,
    b"COPY": _transfer,
    b"MOVE": _transfer,
    b"ENABLE": _enable,
    b"ID": _id,
}

#: The commands C{UID} may prefix (RFC 3501 6.4.8, RFC 4315 2.1, RFC
#: 6851 3.2).
_UID_COMMANDS: dict[bytes, _Parser] = {
    b"COPY": _transfer,
    b"MOVE": _transfer,
    b"FETCH": fetchArguments,
    b"STORE": _store,
    b"SEARCH": searchArguments,
    b"EXPUNGE": _uidExpunge,
}
