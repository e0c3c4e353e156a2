# -*- test-case-name: tests.test_maildir_store -*-
"""
The mail store every server shares (L{IMailStore}), and its Maildir
implementation (L{MaildirStore}), compatible on disk with Dovecot and mutt.

    store = MaildirStore("/var/mail/store")
    account = await store.openAccount("alice@example.com", create=True)
    folder = await account.openFolder("INBOX")
    for info in folder.messages():
        head = await folder.read(info.uid, 0, 1024)

What a server needs of many messages' contents runs in the store's
threads, in batches: L{IFolder.scan} runs a function over messages (IMAP
SEARCH), L{IFolder.cachedData} computes data from each message once and
keeps it, in memory and in the folder (IMAP ENVELOPE and BODYSTRUCTURE).

    hits = await folder.scan(uids, lambda m: b"urgent" in m, limit=64 * 1024)
    structures = await folder.cachedData(uids, "imap4.structure.1", parse)

A large message is read a piece at a time, in order, each piece costing
what it reads (L{IFolder.openMessage}, an L{IMessageReader}); close the
reader when done (one left open holds its file until the message leaves
the folder or the view closes):

    reader = await folder.openMessage(uid)
    try:
        while piece := await reader.read(256 * 1024):
            send(piece)
    finally:
        reader.close()

and appended a piece at a time, never held whole
(L{IAccount.appendStream}, an L{IMessageWriter}):

    writer = account.appendStream("Sent")
    for piece in pieces:
        paused = writer.write(piece)
        if paused is not None:
            await paused
    result = await writer.finish([SEEN])
"""

from gomail_twisted.maildir._files import DISK_ERRORS, FULL_ERRORS
from gomail_twisted.maildir._store import (
    DEFAULT_APPEND_BUFFER,
    DEFAULT_CACHE_MEMORY,
    DEFAULT_DISK_THREADS,
    MaildirStore,
    mailboxDirectoryName,
)
from gomail_twisted.maildir.errors import (
    FolderExists,
    InvalidName,
    NameTooLong,
    NoSuchAccount,
    NoSuchFolder,
    NoSuchMessage,
    ReadOnlyFolder,
    StoreError,
    StoreFailed,
    StoreFull,
    TooManyKeywords,
)
from gomail_twisted.maildir.interfaces import (
    ANSWERED,
    DELETED,
    DRAFT,
    FLAGGED,
    INBOX,
    SEEN,
    SPECIAL_USE_FOLDERS,
    SYSTEM_FLAGS,
    CopyResult,
    FlagChange,
    FlagUpdate,
    FolderInfo,
    FolderStatus,
    IAccount,
    IFolder,
    IFolderListener,
    IMailStore,
    IMessageReader,
    IMessageWriter,
    MessageInfo,
)

__all__ = [
    "ANSWERED",
    "DEFAULT_APPEND_BUFFER",
    "DEFAULT_CACHE_MEMORY",
    "DEFAULT_DISK_THREADS",
    "DELETED",
    "DISK_ERRORS",
    "DRAFT",
    "FLAGGED",
    "FULL_ERRORS",
    "INBOX",
    "SEEN",
    "SPECIAL_USE_FOLDERS",
    "SYSTEM_FLAGS",
    "CopyResult",
    "FlagChange",
    "FlagUpdate",
    "FolderExists",
    "FolderInfo",
    "FolderStatus",
    "IAccount",
    "IFolder",
    "IFolderListener",
    "IMailStore",
    "IMessageReader",
    "IMessageWriter",
    "InvalidName",
    "MaildirStore",
    "MessageInfo",
    "NameTooLong",
    "NoSuchAccount",
    "NoSuchFolder",
    "NoSuchMessage",
    "ReadOnlyFolder",
    "StoreError",
    "StoreFailed",
    "StoreFull",
    "TooManyKeywords",
    "mailboxDirectoryName",
]
