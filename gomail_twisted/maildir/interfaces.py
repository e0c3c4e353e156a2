# -*- test-case-name: tests.test_maildir_store -*-
"""
The store every server shares: accounts, their folders, and the messages
in them.

The interface speaks of folders and messages, never of files, so that a
store on a database can implement it as the Maildir one does.  Every method
that may touch the disk returns a L{Deferred}; none blocks the reactor.

A folder name is a C{str} with C{/} between the levels of the hierarchy;
C{INBOX} (any case) is where mail is delivered.  Messages are given and
returned in their RFC 5322 form, lines ending in CRLF, whatever the store
keeps on disk; a message's size is the size of that form (IMAP's
RFC822.SIZE, POP3's LIST).

Servers meet only here: a change made through one open folder reaches the
L{IFolderListener}s of every other open view of that folder in the
process at once, and a change made by another process (a delivering
C{twistd gomail-smtp}, mutt writing directly) at the next
L{IFolder.refresh}, or within a couple of seconds for a view with
listeners.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

#: The system flags of RFC 3501 2.3.2 that a store keeps (C{\\Recent} is a
#: session's, not the store's).
SEEN = "\\Seen"
ANSWERED = "\\Answered"
FLAGGED = "\\Flagged"
DELETED = "\\Deleted"
DRAFT = "\\Draft"
SYSTEM_FLAGS = frozenset({SEEN, ANSWERED, FLAGGED, DELETED, DRAFT})

#: The special-use attributes of RFC 6154 given to a new account's folders.
SPECIAL_USE_FOLDERS = (
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Junk", "\\Junk"),
    ("Trash", "\\Trash"),
    ("Archive", "\\Archive"),
)

INBOX = "INBOX"

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """
    What the store knows of one message without reading it.

    @ivar uid: its UID (RFC 3501 2.3.1.1): never reused in the folder while
        its UIDVALIDITY lasts.
    @ivar flags: system flags (C{\\Seen}, ...) and keywords.  System flags
        are spelled as in L{SYSTEM_FLAGS}; keywords as first stored.
    @ivar size: the size of its RFC 5322 form, lines ending in CRLF.
    @ivar internalDate: when it arrived (or the date an APPEND gave), in
        seconds since the epoch.
    @ivar modSeq: its mod-sequence (RFC 7162 3.1): raised whenever its
        flags change, never lowered.
    """

    uid: int
    flags: frozenset[str]
    size: int
    internalDate: float
    modSeq: int


@dataclass(frozen=True, slots=True)
class FolderInfo:
    """
    One folder of an account, as listed.

    @ivar name: its name, levels separated by C{/}.
    @ivar specialUse: its RFC 6154 attribute (C{\\Sent}, ...), or L{None}.
    @ivar subscribed: whether the account subscribed to it.
    @ivar hasChildren: whether a folder exists below it.
    """

    name: str
    specialUse: str | None
    subscribed: bool
    hasChildren: bool


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """
    A folder's counts, as IMAP STATUS (RFC 3501 6.3.10) reports them.

    @ivar messages: how many messages it holds.
    @ivar recent: how many no session has seen yet.
    @ivar unseen: how many lack C{\\Seen}.
    @ivar uidNext: the UID the next message will get, at least.
    @ivar uidValidity: its UIDVALIDITY.
    @ivar highestModSeq: the highest mod-sequence of its messages.
    @ivar size: the sum of its messages' sizes.
    """

    messages: int
    recent: int
    unseen: int
    uidNext: int
    uidValidity: int
    highestModSeq: int
    size: int


@dataclass(frozen=True, slots=True)
class CopyResult:
    """
    Where copied, moved or appended messages went, as UIDPLUS (RFC 4315)
    reports it.

    @ivar uidValidity: the destination's UIDVALIDITY.
    @ivar sourceUIDs: the messages copied, in ascending order.
    @ivar destinationUIDs: their new UIDs, in the same order.
    """

    uidValidity: int
    sourceUIDs: tuple[int, ...]
    destinationUIDs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FlagUpdate:
    """
    What a L{IFolder.setFlags} did.

    @ivar updated: the messages whose flags it changed, as they are now.
    @ivar unchanged: messages it left alone because they were modified
        since the C{unchangedSince} mod-sequence (RFC 7162 3.1.3).
    """

    updated: tuple[MessageInfo, ...]
    unchanged: tuple[int, ...]


class FlagChange(enum.Enum):
    """
    How L{IFolder.setFlags} applies flags (RFC 3501 6.4.6: C{FLAGS},
    C{+FLAGS}, C{-FLAGS}).
    """

    REPLACE = "replace"
    ADD = "add"
    REMOVE = "remove"


class IFolderListener(Interface):
    """
    Told of changes to a folder that a view has open, on the reactor
    thread, made through any I{other} view in the process or by another
    process.  A view's own changes come back from its own calls instead.
    """

    def messagesAdded(folder: IFolder, messages: Sequence[MessageInfo]) -> None:
        """
        Messages arrived (delivered, appended, copied or moved in).

        @param folder: the view told.
        @param messages: the new messages, in UID order.
        """

    def flagsChanged(folder: IFolder, messages: Sequence[MessageInfo]) -> None:
        """
        Messages' flags changed.

        @param folder: the view told.
        @param messages: the messages as they are now.
        """

    def messagesExpunged(folder: IFolder, uids: Sequence[int]) -> None:
        """
        Messages left the folder (expunged or moved out).

        @param folder: the view told.
        @param uids: their UIDs, ascending.
        """

    def folderGone(folder: IFolder) -> None:
        """
        The folder was deleted or renamed, or its UIDVALIDITY changed: the
        view is closed and every later call on it fails with
        L{gomail_twisted.maildir.errors.NoSuchFolder}.

        @param folder: the view told.
        """


class IFolder(Interface):
    """
    One session's open view of a folder.

    L{messages} is the folder as last seen; L{refresh} looks again.  Calls
    on one view run in the order made.
    """

    name = Attribute("The folder's name (C{str}).")
    readOnly = Attribute(
        "Whether the view was opened read-only (IMAP EXAMINE): it changes no"
        " flags and claims no message as recent (C{bool})."
    )
    uidValidity = Attribute("The folder's UIDVALIDITY (C{int}).")
    uidNext = Attribute("The UID the next message will get, at least (C{int}).")
    highestModSeq = Attribute("The highest mod-sequence in the folder (C{int}).")
    recent = Attribute(
        "The UIDs that are recent to this view (RFC 3501 2.3.2 C{\\Recent}):"
        " each new message is recent to exactly one view that is not"
        " read-only: the first open when it arrives, else the next opened."
        "  A read-only view claims none, and sees as recent those no view"
        " has claimed yet (C{frozenset[int]})."
    )

    def messages() -> Sequence[MessageInfo]:
        """
        @return: the folder's messages as last seen, in ascending UID order.
        """

    def refresh() -> Deferred[None]:
        """
        Look for changes made by other processes; tell this view's listeners
        and every other view's.

        @return: a Deferred that fires once L{messages} is up to date.
        """

    def addListener(listener: IFolderListener) -> None:
        """
        Be told of changes made elsewhere.  While a view has a listener, the
        store also watches for other processes' changes on its own.

        @param listener: the listener.
        """

    def removeListener(listener: IFolderListener) -> None:
        """
        @param listener: a listener added before.
        """

    def read(uid: int, start: int = 0, length: int | None = None) -> Deferred[bytes]:
        """
        Read a message, or part of it, in its RFC 5322 form (lines ending
        in CRLF), without holding more than the part asked for.  A store
        that keeps messages in another form may have to convert from the
        message's start to find C{start} (the Maildir store does): to read
        a message a piece at a time, use L{openMessage}.

        @param uid: the message.
        @param start: the first byte.
        @param length: how many bytes at most; L{None} for the rest.
        @return: a Deferred firing with the bytes, or failing with
            L{NoSuchMessage<gomail_twisted.maildir.errors.NoSuchMessage>}.
        """

    def openMessage(uid: int) -> Deferred[IMessageReader]:
        """
        Open a message to read it in order, a piece at a time, each piece
        costing what it reads (L{IMessageReader}): what a server sends a
        large message with (IMAP FETCH, POP3 RETR), where L{read} of
        successive ranges would convert the message from its start each
        time.

        The reader holds what the store needs to go on reading (a file
        descriptor for Maildir) until L{IMessageReader.close}, or until the
        message leaves the folder or the view closes: a caller closes it in
        a C{finally}.

        @param uid: the message.
        @return: a Deferred firing with the reader, or failing with
            L{NoSuchMessage<gomail_twisted.maildir.errors.NoSuchMessage>}
            or L{NoSuchFolder<gomail_twisted.maildir.errors.NoSuchFolder>}.
        """

    def scan(
        uids: Sequence[int],
        f: Callable[[int, bytes], _T],
        limit: int | None = None,
    ) -> Deferred[list[tuple[int, _T]]]:
        """
        Run C{f} over messages, away from the reactor thread: what IMAP
        SEARCH (RFC 3501 6.4.4) needs to look at headers and body text.

        C{f} is called in the store's threads, one message at a time, with
        the message's UID and its RFC 5322 form (lines ending in CRLF, as L{read}
        gives it); the store holds no more than one message's bytes (and
        what C{f} returned) at a time for it.  The messages are taken in
        batches, between which the store's other work (other sessions'
        reads, flag changes) goes on, so a long scan delays no one for
        long.

        @param uids: the messages; each is done once, those not (or no
            longer) in the folder are left out.
        @param f: what to run on each message; it must not touch the
            reactor.  What it raises fails the scan with that exception.
        @param limit: when given, C{f} gets only the first C{limit} bytes
            of each message (for work on headers: say, 64 KiB).
        @return: a Deferred firing with C{(uid, f(uid, message))} pairs in the
            order of C{uids}; failing with
            L{NoSuchFolder<gomail_twisted.maildir.errors.NoSuchFolder>}
            if the view closes meanwhile (or the folder's UIDVALIDITY
            changes), or with
            L{StoreFailed<gomail_twisted.maildir.errors.StoreFailed>} when
            a message cannot be read.
        """

    def cachedData(
        uids: Sequence[int], kind: str, compute: Callable[[bytes], bytes]
    ) -> Deferred[dict[int, bytes]]:
        """
        Data derived from messages, computed once per message and kept by
        the store: what IMAP needs for ENVELOPE and BODYSTRUCTURE (RFC 3501
        7.4.2), which are to be computed once per message, not per FETCH.

        For each message, the data of this C{kind} the store kept is
        returned; when it has none, it reads the message in its threads
        (in batches, as L{scan} does), calls C{compute} there with its RFC
        5322 form, keeps the result and returns it.  The store keeps the
        data as long as the message, across restarts when it can, and
        drops it with the message; it may drop it sooner, to be computed
        again.  Losing it never fails the call.

        @param uids: the messages; those not (or no longer) in the folder
            are left out.
        @param kind: what the data is: a short name of printable ASCII
            (no space), at most 64 characters, that names the caller's
            format and its version (C{"imap4.structure.1"}), so that a new
            format is computed anew rather than read in the old one.
        @param compute: makes the data from the message; it must not touch
            the reactor.  The same message's data may be computed more than
            once when several callers ask at the same time.  What it raises
            fails the call with that exception.
        @return: a Deferred firing with each message's data, by UID, in
            the order of C{uids}; failing with L{ValueError} for a bad
            C{kind}, as L{scan} fails, or with L{TypeError} when C{compute}
            returns something else than C{bytes}.
        """

    def setFlags(
        uids: Iterable[int],
        flags: Iterable[str],
        change: FlagChange,
        unchangedSince: int | None = None,
    ) -> Deferred[FlagUpdate]:
        """
        Set, add or remove flags on messages; UIDs no longer in the folder
        are passed over.

        @param uids: the messages.
        @param flags: system flags and keywords.
        @param change: how to apply them.
        @param unchangedSince: when given, leave alone the messages whose
            mod-sequence is above it (RFC 7162 3.1.3).
        @return: a Deferred firing with what changed; failing with
            L{ReadOnlyFolder<gomail_twisted.maildir.errors.ReadOnlyFolder>}
            on a read-only view, or with
            L{TooManyKeywords<gomail_twisted.maildir.errors.TooManyKeywords>}.
        """

    def copy(uids: Iterable[int], destination: str) -> Deferred[CopyResult]:
        """
        Copy messages, with their flags and internal dates, to another
        folder of the account.

        @param uids: the messages; those no longer here are passed over.
        @param destination: the folder's name.
        @return: a Deferred firing with the new UIDs.
        """

    def move(uids: Iterable[int], destination: str) -> Deferred[CopyResult]:
        """
        Move messages to another folder of the account, as one step (RFC
        6851): they leave this folder as they arrive there.

        @param uids: the messages; those no longer here are passed over.
        @param destination: the folder's name.
        @return: a Deferred firing with the new UIDs; failing with
            L{ReadOnlyFolder<gomail_twisted.maildir.errors.ReadOnlyFolder>}
            on a read-only view.
        """

    def expunge(uids: Iterable[int] | None = None) -> Deferred[Sequence[int]]:
        """
        Remove the messages flagged C{\\Deleted} for good.

        @param uids: only these of them (UID EXPUNGE, RFC 4315 2.1); all by
            default.
        @return: a Deferred firing with the UIDs removed, ascending; failing
            with L{ReadOnlyFolder<gomail_twisted.maildir.errors.ReadOnlyFolder>}
            on a read-only view.
        """

    def close() -> None:
        """
        Close the view: its listeners are dropped, and the store stops
        watching for it.
        """


class IMessageReader(Interface):
    """
    One message read in order (L{IFolder.openMessage}), in its RFC 5322
    form (lines ending in CRLF, as L{IFolder.read} gives it).

    Each L{read} goes on where the last stopped and costs what it reads:
    the store keeps its place in the message.  The store reads in its
    threads, and may read ahead of the caller, a bounded amount (the
    Maildir store: 256 KiB, in one job), so that most reads are answered
    at once and the store reads while the caller sends.  One read at a
    time: the next is asked once the last fired.

    Reads fail with
    L{NoSuchMessage<gomail_twisted.maildir.errors.NoSuchMessage>} once the
    message has left the folder (expunged or moved through the store at
    once, its data removed behind the store's back when the store next
    reads), and with
    L{NoSuchFolder<gomail_twisted.maildir.errors.NoSuchFolder>} once the
    view is closed or its folder gone; the reader then lets go of what it
    held, as at L{close}.
    """

    uid = Attribute("The message's UID (C{int}).")
    position = Attribute(
        "The offset of the next byte to read, in the message's CRLF form (C{int})."
    )

    def read(length: int) -> Deferred[bytes]:
        """
        Read the next bytes.

        @param length: how many, at least 0.
        @return: a Deferred firing with C{length} bytes, fewer only at the
            end of the message (empty past it); failing as said above, or
            with L{StoreFailed<gomail_twisted.maildir.errors.StoreFailed>}
            when the store cannot read (and the reader lets go then too).
        @raise RuntimeError: while another read is under way, or after
            L{close}.
        @raise ValueError: for a negative length.
        """

    def seek(offset: int) -> None:
        """
        Make the next L{read} start at C{offset} of the CRLF form (a
        partial FETCH's start, or the next range of a section).  The work
        is the next read's: going forward costs reading the bytes between
        once, going back reading from the message's start.  Past the end,
        reads give nothing.

        @param offset: the offset, at least 0.
        @raise RuntimeError: after L{close}.
        @raise ValueError: for a negative offset.
        """

    def close() -> None:
        """
        Let go of what the reader holds, at once or as soon as the store's
        work under way for it is done.  A read still waiting fails with
        L{CancelledError<twisted.internet.defer.CancelledError>}.  Later
        calls do nothing.
        """


class IMessageWriter(Interface):
    """
    A message on its way into a folder, a piece at a time (an IMAP APPEND
    literal, RFC 3501 6.3.11): what is written goes to the store, never
    held whole in memory.

    Call L{write} with the message's bytes in order, then L{finish} to
    store it, or L{abort} to drop it.
    """

    def write(data: bytes) -> Deferred[None] | None:
        """
        Take the next bytes of the message.  Line ends are CRLF, as sent
        by a client; a CRLF may be split between two writes.

        Writing never fails: after a failure, what follows is dropped and
        L{finish} reports it.

        @param data: the bytes.
        @return: L{None} when the caller may write again at once; or,
            when the writer holds more than it should, a Deferred that
            fires (with L{None}) once it has caught up: the caller should
            stop reading its peer until then.
        @raise RuntimeError: when L{finish} was called.
        """

    def finish(
        flags: Iterable[str] = (), internalDate: float | None = None
    ) -> Deferred[CopyResult]:
        """
        Store the message written, durably before the Deferred fires, as
        L{IAccount.append} does.  Called once.

        @param flags: its flags.
        @param internalDate: its internal date; now by default.
        @return: a Deferred firing with its UID (C{sourceUIDs} is empty);
            failing with
            L{NoSuchFolder<gomail_twisted.maildir.errors.NoSuchFolder>}
            when the folder does not exist (or went away meanwhile),
            L{StoreFull<gomail_twisted.maildir.errors.StoreFull>} when the
            disk or a quota is full,
            L{TooManyKeywords<gomail_twisted.maildir.errors.TooManyKeywords>},
            or L{StoreFailed<gomail_twisted.maildir.errors.StoreFailed>};
            on failure nothing is stored and nothing is left behind.
        """

    def abort() -> None:
        """
        Drop the message (the peer went away, or the command was refused)
        and whatever was written of it.  It may be called at any time and
        more than once; once L{finish} was called it does nothing, and
        L{finish}'s Deferred says what became of the message.
        """


class IAccount(Interface):
    """
    One user's folders.
    """

    user = Attribute("The account's user, a normalized address (C{str}).")

    def listFolders() -> Deferred[Sequence[FolderInfo]]:
        """
        @return: a Deferred firing with every folder, INBOX first, then by
            name.
        """

    def createFolder(name: str) -> Deferred[str]:
        """
        Create a folder.

        @param name: its name.
        @return: a Deferred firing with the name as stored (C{INBOX} in
            capitals); failing with L{FolderExists}, L{InvalidName} or
            L{NameTooLong} from L{gomail_twisted.maildir.errors}.
        """

    def deleteFolder(name: str) -> Deferred[None]:
        """
        Delete a folder and its messages; folders below it stay.  Open views
        of it are told L{IFolderListener.folderGone}.

        @param name: its name; not C{INBOX}.
        """

    def renameFolder(old: str, new: str) -> Deferred[None]:
        """
        Rename a folder and the folders below it.  Renaming C{INBOX} moves
        its messages into a new folder and leaves it empty (RFC 3501
        6.3.5).

        @param old: the folder's name.
        @param new: its new name, which must not exist.
        """

    def listSubscriptions() -> Deferred[Sequence[str]]:
        """
        @return: a Deferred firing with the names subscribed to (RFC 3501
            6.3.9), whether folders have them or not.
        """

    def subscribe(name: str) -> Deferred[None]:
        """
        Subscribe to a folder name (RFC 3501 6.3.6); it need not exist.
        """

    def unsubscribe(name: str) -> Deferred[None]:
        """
        Unsubscribe from a folder name.
        """

    def folderStatus(name: str) -> Deferred[FolderStatus]:
        """
        @param name: a folder's name.
        @return: a Deferred firing with its counts.
        """

    def openFolder(name: str, readOnly: bool = False) -> Deferred[IFolder]:
        """
        Open a view of a folder.

        @param name: its name.
        @param readOnly: open it as IMAP EXAMINE does.
        @return: a Deferred firing with the view, or failing with
            L{NoSuchFolder<gomail_twisted.maildir.errors.NoSuchFolder>}.
        """

    def append(
        name: str,
        message: bytes,
        flags: Iterable[str] = (),
        internalDate: float | None = None,
    ) -> Deferred[CopyResult]:
        """
        Add a message to a folder (IMAP APPEND), durably before the
        Deferred fires.

        @param name: the folder's name.
        @param message: the message; CRLF or LF line ends.
        @param flags: its flags.
        @param internalDate: its internal date; now by default.
        @return: a Deferred firing with its UID (C{sourceUIDs} is empty).
        """

    def appendStream(name: str) -> IMessageWriter:
        """
        Start adding a message to a folder a piece at a time (IMAP APPEND
        of a large literal): see L{IMessageWriter}.

        Whether the folder exists is known only from the store (not at
        once): if it does not, the writer drops what is written and its
        L{IMessageWriter.finish} fails with
        L{NoSuchFolder<gomail_twisted.maildir.errors.NoSuchFolder>}.  A
        server that must answer C{[TRYCREATE]} before it takes the message
        asks L{folderStatus} first.

        @param name: the folder's name.
        @return: the writer.
        @raise InvalidName: at once, for a name no folder can have
            (L{gomail_twisted.maildir.errors.InvalidName}).
        """


class IMailStore(Interface):
    """
    All the accounts.
    """

    def openAccount(user: str, create: bool = False) -> Deferred[IAccount]:
        """
        Open a user's account.

        @param user: the user, a normalized address
            (L{gomail_twisted.address.normalizeAddress}).
        @param create: make the account (INBOX and the L{special-use
            folders<SPECIAL_USE_FOLDERS>}) if it does not exist.
        @return: a Deferred firing with the account, or failing with
            L{NoSuchAccount<gomail_twisted.maildir.errors.NoSuchAccount>}
            or L{InvalidName<gomail_twisted.maildir.errors.InvalidName>}.
        """

    def deliver(
        users: Sequence[str], message: bytes, internalDate: float | None = None
    ) -> Deferred[None]:
        """
        Deliver one message to the INBOX of several users, all or nothing,
        making their accounts as needed.  The Deferred fires only once
        every copy is durably stored.

        @param users: normalized addresses; duplicates get one copy.
        @param message: the message; CRLF or LF line ends.
        @param internalDate: its internal date; now by default.
        @return: a Deferred failing with
            L{StoreFull<gomail_twisted.maildir.errors.StoreFull>},
            L{StoreFailed<gomail_twisted.maildir.errors.StoreFailed>} or
            L{InvalidName<gomail_twisted.maildir.errors.InvalidName>} when
            nothing was delivered.
        """
