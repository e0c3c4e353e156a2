# -*- test-case-name: tests.test_imap4_mailboxes -*-
"""
The mailbox commands: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
LIST and LSUB, STATUS, APPEND (RFC 3501 6.3.3-6.3.11) and NAMESPACE (RFC
2342); with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), CHILDREN
(RFC 3348), SPECIAL-USE (RFC 6154), STATUS=SIZE (RFC 8438) and UIDPLUS's
C{APPENDUID} (RFC 4315 3).

What LIST and LSUB say is worked out in L{_listing}.  Where RFC 3501
leaves a choice, the answers are Dovecot's:

  - CREATE makes only the folder named, not the levels above it (LIST
    shows those as C{\\Noselect}); a name ending in the delimiter names
    the folder without it (6.3.3).
  - DELETE refuses INBOX; a folder with folders below it is deleted and
    they stay.  Deleting (or renaming) the selected mailbox is answered,
    then the connection is closed with C{* BYE}, since the session's
    view of it is gone (RFC 3501 7.1.5).
  - SUBSCRIBE takes a name whether or not a folder has it (6.3.6).
  - APPEND refuses an empty message.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.python.failure import Failure

from gomail_twisted.imap4 import _encode as E
from gomail_twisted.imap4 import _listing as L
from gomail_twisted.imap4 import _status as S
from gomail_twisted.imap4._base import ANSWERED, ServerBase
from gomail_twisted.imap4._commands import (
    Append,
    Command,
    ListMailboxes,
    Mailbox,
    Rename,
    Status,
)
from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.maildir.errors import StoreError
from gomail_twisted.maildir.interfaces import (
    INBOX,
    CopyResult,
    FolderInfo,
    FolderStatus,
    IAccount,
    IMessageWriter,
)

#: The answer to NAMESPACE (RFC 2342 5): one personal namespace without
#: a prefix, no others.
NAMESPACE_RESPONSE = (
    b"* NAMESPACE ((" + E.string("") + b" " + E.string(L.DELIMITER) + b")) NIL NIL\r\n"
)

EMPTY_MESSAGE = IMAPStatus.no("Can't save a zero byte message")
INBOX_UNDELETABLE = IMAPStatus.no("INBOX can't be deleted", "CANNOT")
MAILBOX_RENAMED = IMAPStatus("BYE", "Selected mailbox was renamed, have to disconnect")


def canonicalName(name: str) -> str:
    """
    A mailbox name with its first level in capitals when it is C{INBOX}
    in any case, as the store names folders (RFC 3501 5.1).

    @param name: a name.
    @return: the name, so spelled.
    """
    head, sep, rest = name.partition(L.DELIMITER)
    if L.isInbox(head):
        return INBOX + sep + rest
    return name


def subscriptions(
    account: IAccount, folders: Sequence[FolderInfo]
) -> Deferred[Sequence[str]]:
    """
    The names the account subscribed to, whether folders have them or
    not, from the store's C{listSubscriptions} when it has one; otherwise
    the folders listed as subscribed.

    @param account: the account.
    @param folders: its folders, as listed.
    @return: a Deferred firing with the names.
    """
    listSubscriptions = getattr(account, "listSubscriptions", None)
    if listSubscriptions is not None:
        d: Deferred[Sequence[str]] = listSubscriptions()
        return d
    return succeed([f.name for f in folders if f.subscribed])


class MailboxCommands(ServerBase):
    """
    CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, STATUS,
    APPEND, NAMESPACE.
    """

    @property
    def _utf8(self) -> bool:
        return "UTF8=ACCEPT" in self.enabled

    def _condstore(self) -> None:
        """
        A CONDSTORE-enabling command was given (RFC 7162 3.1: STATUS or
        LIST-STATUS with C{HIGHESTMODSEQ}).
        """
        self.enabled.add("CONDSTORE")
        if self.selected is not None:
            self.selected.condstore = True

    def _answerGone(self, tag: str, status: IMAPStatus, bye: IMAPStatus) -> object:
        """
        After a DELETE or RENAME: when it took the selected mailbox away,
        send the tagged status, then C{bye}, and close (as Dovecot does
        for DELETE); otherwise let the command end as usual.
        """
        if self.selected is None or not self.selected.gone or self.closed:
            return status
        self.write(status.format(tag))
        self._untagged(bye)
        self.closeConnection()
        return ANSWERED

    # CREATE, DELETE, RENAME (RFC 3501 6.3.3-6.3.5).

    def doCreate(self, command: Command) -> Deferred[None]:
        arguments = command.arguments
        assert isinstance(arguments, Mailbox)
        name = arguments.mailbox
        if name.endswith(L.DELIMITER):
            # 6.3.3: the client means to make names below it.
            name = name[: -len(L.DELIMITER)]
        d: Deferred[str] = self.account.createFolder(name)
        return d.addCallback(lambda _: None)

    def doDelete(self, command: Command) -> object:
        arguments = command.arguments
        assert isinstance(arguments, Mailbox)
        name = canonicalName(arguments.mailbox)
        if name == INBOX:
            return INBOX_UNDELETABLE
        d: Deferred[None] = self.account.deleteFolder(name)
        return d.addCallback(
            lambda _: self._answerGone(
                command.tag, IMAPStatus.ok("DELETE completed"), S.MAILBOX_GONE
            )
        )

    def doRename(self, command: Command) -> object:
        arguments = command.arguments
        assert isinstance(arguments, Rename)
        d: Deferred[None] = self.account.renameFolder(arguments.old, arguments.new)
        return d.addCallback(
            lambda _: self._answerGone(
                command.tag, IMAPStatus.ok("RENAME completed"), MAILBOX_RENAMED
            )
        )

    # SUBSCRIBE, UNSUBSCRIBE (6.3.6, 6.3.7).

    def doSubscribe(self, command: Command) -> Deferred[None]:
        arguments = command.arguments
        assert isinstance(arguments, Mailbox)
        d: Deferred[None] = self.account.subscribe(arguments.mailbox)
        return d

    def doUnsubscribe(self, command: Command) -> Deferred[None]:
        arguments = command.arguments
        assert isinstance(arguments, Mailbox)
        d: Deferred[None] = self.account.unsubscribe(arguments.mailbox)
        return d

    # LIST, LSUB (6.3.8, 6.3.9; RFC 5258, RFC 5819).

    def doList(self, command: Command) -> Deferred[None]:
        arguments = command.arguments
        assert isinstance(arguments, ListMailboxes)
        account = self.account
        kind = command.name.encode("ascii")
        items = arguments.statusItems
        if "HIGHESTMODSEQ" in items:
            self._condstore()

        async def answer() -> None:
            folders: Sequence[FolderInfo] = await account.listFolders()
            subscribed = await subscriptions(account, folders)
            entries = L.listing(arguments, folders, subscribed)
            statuses: list[bytes | None] = [None] * len(entries)
            if items:
                statuses = await self._listStatuses(entries, items)
            out = []
            for entry, status in zip(entries, statuses, strict=True):
                out.append(L.listResponse(kind, entry, self._utf8))
                if status is not None:
                    out.append(status)
            self.write(b"".join(out))

        return Deferred.fromCoroutine(answer())

    def _listStatuses(
        self, entries: Sequence[L.Listed], items: Sequence[str]
    ) -> Deferred[list[bytes | None]]:
        """
        The STATUS responses of LIST-STATUS (RFC 5819 2): one for each
        folder listed, none for a name that is no folder or whose status
        could not be had (it went away meanwhile, say).
        """

        def one(entry: L.Listed) -> Deferred[bytes | None]:
            if not entry.exists:
                return succeed(None)
            d: Deferred[FolderStatus] = self.account.folderStatus(entry.name)

            def got(status: FolderStatus) -> bytes:
                return L.statusResponse(entry.name, status, items, self._utf8)

            def failed(reason: Failure) -> None:
                reason.trap(StoreError, ValueError)

            return d.addCallbacks(got, failed)

        return gatherResults([one(e) for e in entries], consumeErrors=True)

    # STATUS (6.3.10).

    def doStatus(self, command: Command) -> Deferred[None]:
        arguments = command.arguments
        assert isinstance(arguments, Status)
        if "HIGHESTMODSEQ" in arguments.items:
            self._condstore()
        d: Deferred[FolderStatus] = self.account.folderStatus(arguments.mailbox)

        def got(status: FolderStatus) -> None:
            self.write(
                L.statusResponse(arguments.mailbox, status, arguments.items, self._utf8)
            )

        return d.addCallback(got)

    # APPEND (6.3.11; RFC 4315 3).

    def doAppend(self, command: Command) -> object:
        arguments = command.arguments
        assert isinstance(arguments, Append)
        message = arguments.message
        date = None if arguments.date is None else arguments.date.timestamp()
        d: Deferred[CopyResult]
        if isinstance(message, bytes):
            if not message:
                return EMPTY_MESSAGE
            d = self.account.append(arguments.mailbox, message, arguments.flags, date)
        else:
            # The store's writer the protocol streamed the literal to.
            d = IMessageWriter(message).finish(arguments.flags, date)

        def appended(result: CopyResult) -> IMAPStatus:
            uid = E.number(result.destinationUIDs[0])
            code = b"APPENDUID " + E.number(result.uidValidity) + b" " + uid
            return IMAPStatus.ok("APPEND completed", code.decode("ascii"))

        return d.addCallback(appended)

    # NAMESPACE (RFC 2342).

    def doNamespace(self, command: Command) -> None:
        self.write(NAMESPACE_RESPONSE)
