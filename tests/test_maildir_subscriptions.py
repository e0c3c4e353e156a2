# -*- test-case-name: tests.test_maildir_subscriptions -*-
"""
Tests for L{gomail_twisted.maildir._subscriptions}: the C{subscriptions}
file in both of Dovecot's versions, byte for byte.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.maildir._names import INBOX, checkFolderName
from gomail_twisted.maildir._subscriptions import (
    Subscription,
    changeSubscription,
    parseSubscriptions,
    readSubscriptions,
    writeSubscriptions,
)
from gomail_twisted.maildir.errors import InvalidName

#: What Dovecot 2.3 writes after subscribing to three folders.
DOVECOT_V2 = b"V\t2\n\nProjects\t2025\nReisen\t&ANw-bersee\nINBOX\n"
#: The same subscriptions as Dovecot 1.x and Courier keep them.
DOVECOT_V1 = b"Projects.2025\nReisen.&ANw-bersee\nINBOX\n"

# (file, what it parses to)
PARSED = [
    (b"", []),
    (b"V\t2\n\n", []),
    (
        DOVECOT_V2,
        [
            Subscription("Projects/2025", b"Projects\t2025"),
            Subscription("Reisen/\xdcbersee", b"Reisen\t&ANw-bersee"),
            Subscription(INBOX, b"INBOX"),
        ],
    ),
    (
        DOVECOT_V1,
        [
            Subscription("Projects/2025", b"Projects\t2025"),
            Subscription("Reisen/\xdcbersee", b"Reisen\t&ANw-bersee"),
            Subscription(INBOX, b"INBOX"),
        ],
    ),
    # INBOX in any case is INBOX, in both versions.
    (b"V\t2\n\ninbox\n", [Subscription(INBOX, b"inbox")]),
    (b"Inbox\n", [Subscription(INBOX, b"INBOX")]),
    # A dot inside a level of version 2 is refused: no folder holds it.
    (b"V\t2\n\na.b\n", [Subscription(None, b"a.b")]),
    # Lines that name no folder: non-canonical or broken modified UTF-7,
    # bytes beyond ASCII, a tab-escaped TAB, a leading ~, an empty level.
    (
        b"V\t2\n\nCaf&AOk\nCaf\xc3\xa9\nA\x01tB\n~home\nx\t\t\ty\n",
        [
            Subscription(None, b"Caf&AOk"),
            Subscription(None, b"Caf\xc3\xa9"),
            Subscription(None, b"A\x01tB"),
            Subscription(None, b"~home"),
            Subscription(None, b"x\t\t\ty"),
        ],
    ),
    # In version 1 such a line takes the version-2 spelling of its levels,
    # tab-escaped, so Dovecot reads the same name from either.
    (
        b"Caf&AOk.x\nA\tB\n~home\n",
        [
            Subscription(None, b"Caf&AOk\tx"),
            Subscription(None, b"A\x01tB"),
            Subscription(None, b"~home"),
        ],
    ),
    # A header that is not exactly version 2's is a version-1 line.
    (
        b"V\t3\n\nSent\n",
        [Subscription(None, b"V\x01t3"), Subscription("Sent", b"Sent")],
    ),
]


class ParseTests(SynchronousTestCase):
    """
    L{parseSubscriptions} on files of both versions.
    """

    def test_table(self) -> None:
        """
        Every file in the table parses to its lines, names decoded from
        modified UTF-7 level by level.
        """
        for data, expected in PARSED:
            with self.subTest(data=data):
                self.assertEqual(parseSubscriptions(data), expected)

    @given(
        st.lists(
            st.lists(
                st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1),
                min_size=1,
                max_size=4,
            ).map("/".join),
            max_size=8,
        )
    )
    def test_roundTrip(self, names: list[str]) -> None:
        """
        Whatever folders are written are read back, in order, without
        repeats, in version 2 as in version 1.
        """
        valid = []
        for name in names:
            try:
                valid.append(checkFolderName(name))
            except InvalidName:
                pass
        root = Path(self.mktemp())
        root.mkdir()
        writeSubscriptions(root, valid)
        self.assertTrue((root / "subscriptions").read_bytes().startswith(b"V\t2\n\n"))
        self.assertEqual(readSubscriptions(root), list(dict.fromkeys(valid)))


class FileTests(SynchronousTestCase):
    """
    Reading and changing the file another program wrote.
    """

    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        self.root.mkdir()
        self.file = self.root / "subscriptions"

    def test_readDovecotVersion2(self) -> None:
        """
        Dovecot's version-2 file gives its folders, non-ASCII levels
        decoded.
        """
        self.file.write_bytes(DOVECOT_V2)
        self.assertEqual(
            readSubscriptions(self.root), ["Projects/2025", "Reisen/Übersee", INBOX]
        )

    def test_readDovecotVersion1(self) -> None:
        """
        The version-1 file gives the same folders.
        """
        self.file.write_bytes(DOVECOT_V1)
        self.assertEqual(
            readSubscriptions(self.root), ["Projects/2025", "Reisen/Übersee", INBOX]
        )

    def test_noFile(self) -> None:
        """
        With no file, nothing is subscribed, and unsubscribing writes none.
        """
        self.assertEqual(readSubscriptions(self.root), [])
        self.assertFalse(changeSubscription(self.root, "Sent", False))
        self.assertFalse(self.file.exists())

    def test_subscribeKeepsVersion2(self) -> None:
        """
        Subscribing adds one line to Dovecot's version-2 file and keeps
        every other byte.
        """
        self.file.write_bytes(DOVECOT_V2)
        self.assertTrue(changeSubscription(self.root, "Entwürfe/Neu", True))
        self.assertEqual(self.file.read_bytes(), DOVECOT_V2 + b"Entw&APw-rfe\tNeu\n")
        self.assertEqual(list(self.root.iterdir()), [self.file])

    def test_subscribeConvertsVersion1(self) -> None:
        """
        Subscribing rewrites a version-1 file in version 2, with the same
        folders and the new one.
        """
        self.file.write_bytes(DOVECOT_V1)
        self.assertTrue(changeSubscription(self.root, "Sent", True))
        self.assertEqual(self.file.read_bytes(), DOVECOT_V2 + b"Sent\n")

    def test_alreadySubscribed(self) -> None:
        """
        Subscribing to a folder already there leaves the file as it was,
        in version 1 too.
        """
        self.file.write_bytes(DOVECOT_V1)
        self.assertFalse(changeSubscription(self.root, "Reisen/Übersee", True))
        self.assertEqual(self.file.read_bytes(), DOVECOT_V1)

    def test_unsubscribe(self) -> None:
        """
        Unsubscribing removes the folder's line, however INBOX was spelled.
        """
        self.file.write_bytes(b"V\t2\n\ninbox\nSent\n")
        self.assertTrue(changeSubscription(self.root, INBOX, False))
        self.assertEqual(self.file.read_bytes(), b"V\t2\n\nSent\n")

    def test_unreadableLinesKept(self) -> None:
        """
        Lines that name no folder are kept byte for byte when the file
        changes, and stay out of the folders read.
        """
        strange = b"Caf&AOk\nCaf\xc3\xa9\nA\x01tB\n~home\n"
        self.file.write_bytes(b"V\t2\n\n" + strange + b"Sent\n")
        self.assertEqual(readSubscriptions(self.root), ["Sent"])
        changeSubscription(self.root, "Sent", False)
        changeSubscription(self.root, "Trash", True)
        self.assertEqual(self.file.read_bytes(), b"V\t2\n\n" + strange + b"Trash\n")

    def test_unreadableVersion1LinesKept(self) -> None:
        """
        A version-1 line that names no folder is kept, in the version-2
        spelling that means the same to Dovecot.
        """
        self.file.write_bytes(b"Caf&AOk.x\nSent\n")
        changeSubscription(self.root, "Trash", True)
        self.assertEqual(self.file.read_bytes(), b"V\t2\n\nCaf&AOk\tx\nSent\nTrash\n")

    def test_repeatsDropped(self) -> None:
        """
        A line written twice is written once when the file changes.
        """
        self.file.write_bytes(b"V\t2\n\nSent\nSent\nx&\nx&\n")
        self.assertEqual(readSubscriptions(self.root), ["Sent"])
        changeSubscription(self.root, "Trash", True)
        self.assertEqual(self.file.read_bytes(), b"V\t2\n\nSent\nx&\nTrash\n")

    def test_failedWriteKeepsFile(self) -> None:
        """
        When the new file cannot be put in place, the old one is intact
        and no temporary file is left.
        """
        self.file.write_bytes(DOVECOT_V2)

        def failing(source: object, destination: object) -> None:
            raise OSError(28, "No space left on device")

        self.patch(os, "rename", failing)
        self.assertRaises(OSError, changeSubscription, self.root, "Sent", True)
        self.assertEqual(list(self.root.iterdir()), [self.file])
        self.assertEqual(self.file.read_bytes(), DOVECOT_V2)

    def test_threadsReplaceAtOnce(self) -> None:
        """
        Threads of one process that replace the file at the same time each
        write their own temporary file: none fails, the file holds one
        writer's whole list, and no temporary file is left.
        """
        errors: list[BaseException] = []
        lists = [["Sent", f"Folder{n}"] for n in range(8)]

        def write(names: list[str]) -> None:
            try:
                for _ in range(20):
                    writeSubscriptions(self.root, names)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=write, args=(n,)) for n in lists]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual(errors, [])
        self.assertIn(readSubscriptions(self.root), lists)
        self.assertEqual(list(self.root.iterdir()), [self.file])
