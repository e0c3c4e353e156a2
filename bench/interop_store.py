# -*- test-case-name: tests.test_maildir_store -*-
"""
Check, beyond the test suite, that our Maildir store and Dovecot, mutt and
the standard library's C{mailbox.Maildir} read each other's folders the
same way: messages (bytes, modulo line ends), flags, keywords, sizes,
internal dates, folders and subscriptions.

  1. Ours writes: an account made with our C{MaildirStore} (its special-use
     folders, sub-folders, a non-ASCII name, subscriptions, messages
     delivered and appended with system flags and keywords, a flag set
     afterwards).  Then:

       - Dovecot (IMAP, read-only EXAMINE) lists the same folders and
         subscriptions and fetches the same messages, flags, keywords,
         sizes and internal dates; its POP3 gives the same sizes;
       - C{mailbox.Maildir} sees the same sub-folders, messages and system
         flags;
       - mutt (in batch, under C{script} for a terminal) copies INBOX to
         an MMDF mailbox with the same messages and flags.

  2. Both write: Dovecot selects INBOX read-write, sets flags and a
     keyword, copies a message to another folder (whose keywords file
     differs), expunges and appends; mutt flags one message and deletes
     another.
     An open view of ours with a listener must be told within a couple of
     seconds, unasked; then the view refreshed, and a new instance, see
     the same messages and flags, every other message keeping its UID and
     the new one getting a UID above all given before.

  3. They write: Dovecot creates folders (one without its parent, one
     non-ASCII), subscribes, and appends messages with flags, keywords
     and internal dates; C{mailbox.Maildir} drops one into C{new/} and
     one into C{cur/} with a flag letter no one here knows (C{P}).  Our
     store lists the same folders and subscriptions and reads the same
     messages and flags; ours appends a message with a keyword that
     Dovecot already gave a letter, and Dovecot sees it; ours flags the
     C{P} message and keeps the letter; then each side renames and
     deletes folders and the other lists the same.

UIDs are not compared across servers: ours keeps its own
(C{gomail-uidlist}), Dovecot its own (C{dovecot-uidlist}).

Needs root (Dovecot's mail processes run as C{nobody}, so the mail
directory is handed to it), C{apt-get install dovecot-imapd dovecot-pop3d
mutt}, and nothing listening on the chosen ports.  Dovecot runs in the
foreground (C{dovecot -F}) with its own configuration, state and log in a
temporary directory, listening on 127.0.0.1 only, plaintext login
allowed, and is stopped at the end.

Run from the repository root::

    .venv/bin/python bench/interop_store.py
    .venv/bin/python bench/interop_store.py --keep   # keep the directory

Every check prints PASS or FAIL with what differed; the exit status is 1
when any failed.
"""

from __future__ import annotations

import argparse
import imaplib
import mailbox
import os
import poplib
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The helpers, after everything else so that no bench script shadows a
# package.
sys.path.append(os.path.dirname(os.path.abspath(__file__)))

from _interop import (  # noqa: E402
    ALICE,
    BOB,
    PASSWORD,
    Checks,
    Dovecot,
    Expected,
    Recorder,
    Seen,
    crlf,
    dump,
    handOver,
    imapFolder,
    imapList,
    makeMessage,
    messageID,
    mutf7Encode,
    mutt,
    muttBody,
    muttFlags,
    oursSeen,
    quoted,
    selectable,
    stdlibSeen,
)
from twisted.internet import task  # noqa: E402
from twisted.internet.defer import Deferred  # noqa: E402

from gomail_twisted.maildir.interfaces import (  # noqa: E402
    ANSWERED,
    DELETED,
    DRAFT,
    FLAGGED,
    SEEN,
    FlagChange,
)


class Interop:
    """
    The three parts, in order.
    """

    def __init__(self, args: argparse.Namespace, reactor: Any, base: str) -> None:
        self.args = args
        self.reactor = reactor
        self.base = base
        self.root = os.path.join(base, "mail")
        os.makedirs(self.root)
        self.checks = Checks()
        self.stores: list[Any] = []
        self.dovecot = Dovecot(base, self.root, [ALICE, BOB], args.port)

    def newStore(self) -> Any:
        from gomail_twisted.maildir import MaildirStore

        store = MaildirStore(self.root, reactor=self.reactor)
        self.stores.append(store)
        return store

    async def run(self) -> None:
        try:
            expected = await self.oursWrite()
            self.dovecot.start()
            await self.theyRead(expected)
            await self.bothWrite(expected)
            await self.theyWrite()
        finally:
            self.dovecot.stop()
            for store in self.stores:
                for name in ("close", "stopService"):
                    stop = getattr(store, name, None)
                    if stop is not None:
                        result = stop()
                        if isinstance(result, Deferred):
                            await result
                        break

    # Part 1.

    async def oursWrite(self) -> list[Expected]:
        print("1. Our store writes; Dovecot, mailbox.Maildir and mutt read")
        store = self.newStore()
        account = await store.openAccount(ALICE, create=True)
        self.aliceFolders = [
            "Archive/2024",
            "Entwürfe",
            "Projects",
            "A&B",
            "INBOX/Sub",
            "Old Mail",
        ]
        for name in self.aliceFolders:
            await account.createFolder(name)
        self.aliceSubscribed = {"INBOX", "Sent", "Archive/2024", "Entwürfe", "Ghost"}
        for name in self.aliceSubscribed:
            await account.subscribe(name)
        expected: list[Expected] = []
        delivered = makeMessage("delivered")
        await store.deliver([ALICE], delivered)
        expected.append(Expected("INBOX", delivered, frozenset()))
        appends: list[tuple[str, bytes, set[str], float]] = [
            ("INBOX", makeMessage("seen"), {SEEN}, 1_700_000_000),
            ("INBOX", makeMessage("label"), {SEEN, FLAGGED, "$Label1"}, 1_700_003_600),
            (
                "INBOX",
                makeMessage("answered", b"From the start of a line\r\n"),
                {ANSWERED, "projectx", "$Forwarded"},
                1_700_007_200,
            ),
            ("INBOX", makeMessage("deleted"), {DELETED, SEEN}, 1_700_010_800),
            (
                "INBOX",
                makeMessage("lf-only").replace(b"\r\n", b"\n"),
                set(),
                1_700_014_400,
            ),
            ("Drafts", makeMessage("draft"), {DRAFT}, 1_700_018_000),
            ("Archive/2024", makeMessage("archived"), {SEEN, "$Label1"}, 1_690_000_000),
            (
                "Archive/2024",
                makeMessage("big", "Grüße, ünïcödé\r\n".encode() * 5000),
                {SEEN},
                1_690_003_600,
            ),
            ("Entwürfe", makeMessage("umlaut"), set(), 1_690_007_200),
        ]
        for folder, data, flags, date in appends:
            await account.append(folder, data, flags, date)
            expected.append(Expected(folder, data, frozenset(flags), date))
        # A keyword added afterwards, through a view.
        inbox = await account.openFolder("INBOX")
        [seen] = [m for m in inbox.messages() if m.flags == frozenset({SEEN})]
        await inbox.setFlags([seen.uid], ["later"], FlagChange.ADD)
        inbox.close()
        for e in expected:
            if e.tag == "seen@interop.example":
                e.flags = frozenset({SEEN, "later"})
        folders = await account.listFolders()
        names = {f.name for f in folders}
        self.checks.same(
            "ours: folders after creating them",
            {"INBOX", "Drafts", "Sent", "Junk", "Trash", "Archive", *self.aliceFolders},
            names,
        )
        # A new account may subscribe its special-use folders too; what
        # Dovecot lists must be what ours says, and a name that is no
        # folder stays subscribed.
        subscribed = {f.name for f in folders if f.subscribed}
        self.checks.same(
            "ours: subscriptions include those made",
            self.aliceSubscribed - {"Ghost"},
            (self.aliceSubscribed - {"Ghost"}) & subscribed,
        )
        self.aliceSubscribed |= subscribed
        ours = {}
        for name in sorted(names):
            view, ours[name] = await oursSeen(account, name)
            view.close()
        self.checks.compare("ours (own reading)", expected, ours)
        self.aliceUIDs: dict[str, int] = {
            tag: s.uid
            for messages in ours.values()
            for tag, s in messages.items()
            if s.uid is not None
        }
        self.aliceFolderNames = names
        self.aliceTags = {name: set(messages) for name, messages in ours.items()}
        print("   files written:")
        print(dump(os.path.join(self.root, ALICE)))
        handOver(self.root)
        return expected

    async def theyRead(self, expected: list[Expected]) -> None:
        home = os.path.join(self.root, ALICE)
        client = self.dovecot.imap(ALICE)
        try:
            listed = imapList(client)
            self.checks.same("dovecot: LIST", self.aliceFolderNames, selectable(listed))
            subscribed = imapList(client, "LSUB")
            self.checks.same("dovecot: LSUB", self.aliceSubscribed, set(subscribed))
            seen = {
                name: imapFolder(client, name)
                for name in sorted(self.aliceFolderNames)
                if name in listed
            }
            self.checks.compare("dovecot", expected, seen)
        finally:
            client.logout()
        pop = poplib.POP3("127.0.0.1", self.dovecot.popPort, timeout=30)
        try:
            pop.user(ALICE)
            pop.pass_(PASSWORD)
            _, listing, _ = pop.list()
            sizes = sorted(int(line.split()[1]) for line in listing)
            want = sorted(len(crlf(e.data)) for e in expected if e.folder == "INBOX")
            self.checks.same("dovecot: POP3 LIST sizes of INBOX", want, sizes)
        finally:
            pop.quit()

        stdlib = stdlibSeen(home, sorted(self.aliceFolderNames))
        self.checks.compare("mailbox.Maildir", expected, stdlib, keywords=False)
        box = mailbox.Maildir(home, factory=None, create=False)
        self.checks.same(
            "mailbox.Maildir: list_folders",
            {
                mutf7Encode(n).replace("/", ".")
                for n in self.aliceFolderNames - {"INBOX"}
            },
            set(box.list_folders()),
        )
        self.muttRead(home, expected)

    def muttRead(self, home: str, expected: list[Expected]) -> None:
        if shutil.which("mutt") is None or shutil.which("script") is None:
            self.checks.check("mutt: installed", False, "mutt or script(1) missing")
            return
        out = os.path.join(self.base, "mutt-inbox.mmdf")
        ok, output = mutt(
            home, f"<tag-pattern>~A<enter><copy-message>{out}<enter>", readOnly=True
        )
        if not self.checks.check(
            "mutt: copies INBOX in batch", ok and os.path.exists(out), output
        ):
            return
        seen = {}
        copied = mailbox.MMDF(out, create=False)
        for key in copied.keys():
            data = copied.get_bytes(key)
            seen[messageID(data)] = Seen(muttBody(data), muttFlags(copied[key]))
        want = [
            Expected(e.folder, e.data, e.flags & {SEEN, ANSWERED, FLAGGED})
            for e in expected
            if e.folder == "INBOX"
        ]
        self.checks.compare("mutt", want, {"INBOX": seen}, sizes=False, dates=False)

    # Part 2.

    async def bothWrite(self, expected: list[Expected]) -> None:
        print("2. Dovecot and mutt change our INBOX; our store follows")
        home = os.path.join(self.root, ALICE)
        store = self.newStore()
        account = await store.openAccount(ALICE)
        view = await account.openFolder("INBOX")
        recorder = Recorder()
        view.addListener(recorder)
        client = self.dovecot.imap(ALICE)
        try:
            seen = imapFolder(client, "INBOX")
            client.select("INBOX")
            byTag = {tag: s.uid for tag, s in seen.items()}

            def store_(tag: str, how: str, flags: str) -> None:
                uid = str(byTag[f"{tag}@interop.example"])
                typ, data = client.uid("STORE", uid, how, flags)
                self.checks.check(
                    f"dovecot: STORE {how}{flags} on {tag}", typ == "OK", repr(data)
                )

            store_("delivered", "+FLAGS", "(\\Seen)")
            store_("label", "+FLAGS", "(dovecot-set)")
            store_("answered", "-FLAGS", "(projectx)")
            typ, data = client.uid(
                "COPY", str(byTag["answered@interop.example"]), quoted("Archive/2024")
            )
            self.checks.check("dovecot: COPY to Archive/2024", typ == "OK", repr(data))
            typ, data = client.expunge()
            self.checks.check("dovecot: EXPUNGE", typ == "OK", repr(data))
            arrived = makeMessage("dovecot-appended")
            typ, data = client.append("INBOX", "(\\Answered)", None, arrived)
            self.checks.check("dovecot: APPEND to INBOX", typ == "OK", repr(data))
        finally:
            client.logout()
        expected.append(Expected("INBOX", arrived, frozenset({ANSWERED})))
        changes = {
            "delivered@interop.example": ({SEEN}, set()),
            "label@interop.example": ({"dovecot-set"}, set()),
            "answered@interop.example": (set(), {"projectx"}),
        }
        [answered] = [e for e in expected if e.tag == "answered@interop.example"]
        expected.append(
            Expected("Archive/2024", answered.data, answered.flags - {"projectx"})
        )
        ok, output = mutt(
            home,
            "<tag-pattern>~s lf-only|~s answered<enter><tag-prefix><flag-message>"
            "<untag-pattern>~A<enter>"
            "<tag-pattern>~s seen<enter><tag-prefix><delete-message>"
            "<sync-mailbox>",
            readOnly=False,
        )
        self.checks.check("mutt: flags and deletes in batch", ok, output)
        changes["lf-only@interop.example"] = ({FLAGGED}, set())
        changes["answered@interop.example"] = ({FLAGGED}, {"projectx"})
        # Dovecot expunged the one flagged \Deleted; mutt deleted another.
        gone = {"deleted@interop.example", "seen@interop.example"}
        now = [e for e in expected if e.folder == "INBOX" and e.tag not in gone]
        for e in now:
            add, remove = changes.get(e.tag, (set(), set()))
            e.flags = (e.flags | add) - remove

        # The view's listener is told within a couple of seconds, unasked.
        goneUIDs = {self.aliceUIDs[t] for t in gone}
        changedUIDs = {self.aliceUIDs[t]: t for t in changes}
        started = time.monotonic()
        while time.monotonic() - started < 5 and not (
            goneUIDs <= recorder.expunged
            and set(changedUIDs) <= set(recorder.flags)
            and recorder.added
        ):
            await task.deferLater(self.reactor, 0.1, lambda: None)
        waited = time.monotonic() - started
        self.checks.same(
            f"ours (listener, {waited:.1f} s): expunged UIDs told",
            goneUIDs,
            recorder.expunged,
        )
        self.checks.same(
            "ours (listener): the message Dovecot appended told",
            1,
            len(recorder.added),
        )
        wanted = {e.tag: e.flags for e in now if e.tag in changes}
        self.checks.same(
            "ours (listener): changed flags told",
            wanted,
            {changedUIDs[u]: f for u, f in recorder.flags.items() if u in changedUIDs},
        )
        await view.refresh()
        got = {}
        for info in view.messages():
            data = await view.read(info.uid)
            got[messageID(data)] = Seen(data, info.flags, info.size, None, info.uid)
        self.checks.compare("ours (view refreshed)", now, {"INBOX": got}, dates=False)
        self.checks.same(
            "ours (view refreshed): UIDs kept",
            {t: u for t, u in self.aliceUIDs.items() if t in got},
            {t: s.uid for t, s in got.items() if t in self.aliceUIDs},
        )
        newUID = got["dovecot-appended@interop.example"].uid
        before = sorted(
            u for t, u in self.aliceUIDs.items() if t in self.aliceTags["INBOX"]
        )
        self.checks.check(
            "ours: the new message's UID is above every UID INBOX gave before",
            newUID is not None and newUID > before[-1],
            f"{newUID} after {before}",
        )
        view.close()
        fresh = self.newStore()
        account = await fresh.openAccount(ALICE)
        read: dict[str, dict[str, Seen]] = {}
        for name in ("INBOX", "Archive/2024"):
            view, read[name] = await oursSeen(account, name)
            view.close()
        self.checks.compare(
            "ours (new instance)",
            now + [e for e in expected if e.folder == "Archive/2024"],
            read,
        )
        self.checks.same(
            "ours (new instance): UIDs kept",
            {t: u for t, u in self.aliceUIDs.items() if t in read["INBOX"]},
            {t: s.uid for t, s in read["INBOX"].items() if t in self.aliceUIDs},
        )

    # Part 3.

    async def theyWrite(self) -> None:
        print("3. Dovecot and mailbox.Maildir write; our store reads")
        home = os.path.join(self.root, BOB)
        expected: list[Expected] = []
        client = self.dovecot.imap(BOB)
        folders = ["Projects/2025", "Reisen/Übersee", "Sent"]
        subscribed = {"INBOX", "Projects/2025", "Reisen/Übersee"}
        try:
            for name in folders:
                typ, response = client.create(quoted(name))
                self.checks.check(
                    f"dovecot: CREATE {name}", typ == "OK", repr(response)
                )
            for name in subscribed:
                client.subscribe(quoted(name))
            appends: list[tuple[str, bytes, str, float]] = [
                ("INBOX", makeMessage("d-seen"), "\\Seen $Important", 1_700_000_000),
                (
                    "INBOX",
                    makeMessage("d-flagged"),
                    "\\Flagged \\Answered todo",
                    1_700_003_600,
                ),
                ("INBOX", makeMessage("d-deleted"), "\\Deleted", 1_700_007_200),
                ("INBOX", makeMessage("d-plain"), "", 1_700_010_800),
                (
                    "Projects/2025",
                    makeMessage("d-draft"),
                    "\\Draft todo",
                    1_700_014_400,
                ),
                (
                    "Reisen/Übersee",
                    makeMessage("d-utf8", "Straße nach Übersee\r\n".encode() * 50),
                    "\\Seen",
                    1_700_018_000,
                ),
            ]
            for folder, data, flags, date in appends:
                typ, response = client.append(
                    quoted(folder), f"({flags})", imaplib.Time2Internaldate(date), data
                )
                self.checks.check(
                    f"dovecot: APPEND to {folder}", typ == "OK", repr(response)
                )
                expected.append(Expected(folder, data, frozenset(flags.split()), date))
            client.select("INBOX")
            typ, found = client.uid(
                "SEARCH", "HEADER", "Message-ID", "d-plain@interop.example"
            )
            client.uid("STORE", found[0].decode(), "+FLAGS", "(later $Important)")
            for e in expected:
                if e.tag == "d-plain@interop.example":
                    e.flags = frozenset({"later", "$Important"})
        finally:
            client.logout()
        procmail = makeMessage("from-stdlib")
        box = mailbox.Maildir(home, factory=None, create=False)
        box.add(procmail)
        expected.append(Expected("INBOX", procmail, frozenset()))
        # A flag letter no one here knows (P, passed) must survive a change.
        passed = mailbox.MaildirMessage(makeMessage("passed"))
        passed.set_subdir("cur")
        passed.set_flags("PS")
        passedKey = box.add(passed)
        expected.append(Expected("INBOX", passed.as_bytes(), frozenset({SEEN})))
        print("   files written by Dovecot and mailbox.Maildir:")
        print(dump(home))

        store = self.newStore()
        try:
            account = await store.openAccount(BOB)
        except Exception as e:
            self.checks.check("ours: opens an account Dovecot made", False, repr(e))
            account = await store.openAccount(BOB, create=True)
        listed = await account.listFolders()
        names = {f.name for f in listed}
        print(
            "   ours lists: "
            + ", ".join(
                f"{f.name}{' (subscribed)' if f.subscribed else ''}"
                f"{' (children)' if f.hasChildren else ''}"
                for f in listed
            )
        )
        self.checks.same("ours: folders Dovecot made", {"INBOX", *folders}, names)
        self.checks.same(
            "ours: subscriptions Dovecot made",
            subscribed,
            {f.name for f in listed if f.subscribed},
        )
        # Ours changes the subscriptions file Dovecot wrote: Dovecot must
        # still see every subscription.
        await account.subscribe("Sent")
        handOver(self.root)
        client = self.dovecot.imap(BOB)
        try:
            self.checks.same(
                "dovecot: LSUB after ours subscribed one more",
                subscribed | {"Sent"},
                set(imapList(client, "LSUB")),
            )
        finally:
            client.logout()
        seen = {}
        for name in ["INBOX", *folders]:
            if name in names:
                view, seen[name] = await oursSeen(account, name)
                view.close()
        self.checks.compare("ours (reading Dovecot's)", expected, seen)

        # Ours appends with a keyword Dovecot gave a letter, and a new one.
        ourMessage = makeMessage("ours-into-dovecot")
        await account.append(
            "Projects/2025", ourMessage, ["todo", "ours-kw", SEEN], 1_700_020_000
        )
        expected.append(
            Expected(
                "Projects/2025",
                ourMessage,
                frozenset({"todo", "ours-kw", SEEN}),
                1_700_020_000,
            )
        )
        handOver(self.root)
        client = self.dovecot.imap(BOB)
        try:
            got = imapFolder(client, "Projects/2025")
        finally:
            client.logout()
        self.checks.compare(
            "dovecot (after ours appended)",
            [e for e in expected if e.folder == "Projects/2025"],
            {"Projects/2025": got},
        )
        await self.folderChanges(account, passedKey, home)

    async def folderChanges(self, account: Any, passedKey: str, home: str) -> None:
        """
        Flags on a file with a letter ours does not know; folders renamed
        and deleted on either side.
        """
        inbox = await account.openFolder("INBOX")
        for m in inbox.messages():
            data = await inbox.read(m.uid)
            if messageID(data) == "passed@interop.example":
                await inbox.setFlags([m.uid], [FLAGGED], FlagChange.ADD)
        inbox.close()
        names = [
            name
            for sub in ("cur", "new")
            for name in os.listdir(os.path.join(home, sub))
            if name.startswith(passedKey)
        ]
        self.checks.check(
            "ours: keeps an unknown flag letter (P) when it adds F",
            len(names) == 1 and names[0].endswith(":2,FPS"),
            repr(names),
        )
        await account.renameFolder("Sent", "Gesendet/2025")
        await account.deleteFolder("Reisen/Übersee")
        handOver(self.root)
        client = self.dovecot.imap(BOB)
        try:
            listed = selectable(imapList(client))
            mine = {f.name for f in await account.listFolders()}
            self.checks.same(
                "dovecot: LIST after ours renamed and deleted", mine, listed
            )
            typ, data = client.rename(quoted("Projects/2025"), quoted("Projekte/Alt"))
            self.checks.check("dovecot: RENAME", typ == "OK", repr(data))
            typ, data = client.delete(quoted("Gesendet/2025"))
            self.checks.check("dovecot: DELETE", typ == "OK", repr(data))
            listed = selectable(imapList(client))
        finally:
            client.logout()
        mine = {f.name for f in await account.listFolders()}
        self.checks.same("ours: LIST after Dovecot renamed and deleted", listed, mine)
        if "Projekte/Alt" in mine:
            view, got = await oursSeen(account, "Projekte/Alt")
            view.close()
            self.checks.same(
                "ours: messages of the folder Dovecot renamed",
                ["d-draft@interop.example", "ours-into-dovecot@interop.example"],
                sorted(got),
            )


async def main(reactor: Any, args: argparse.Namespace) -> None:
    base = tempfile.mkdtemp(prefix="interop-")
    print(f"Interoperability of our Maildir store; files in {base}")
    interop = Interop(args, reactor, base)
    try:
        await interop.run()
    finally:
        log = interop.dovecot.tail(20)
        errors = [
            line
            for line in log.splitlines()
            if ("Error" in line or "Warning" in line)
            and "Killed with signal 15" not in line
        ]
        if errors:
            print("Dovecot's log reports:")
            for line in errors:
                print(f"    {line}")
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    checks = interop.checks
    print()
    print(f"{checks.passed} passed, {len(checks.failed)} failed")
    for name in checks.failed:
        print(f"  FAIL {name}")
    if checks.failed:
        raise SystemExit(1)


def run(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the directory")
    parser.add_argument(
        "--port", type=int, default=14143, help="Dovecot's IMAP port; POP3 on the next"
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: Dovecot's mail processes need a user to run as")
    if shutil.which("dovecot") is None:
        parser.error("install Dovecot: apt-get install dovecot-imapd dovecot-pop3d")
    task.react(lambda reactor: Deferred.fromCoroutine(main(reactor, args)))


if __name__ == "__main__":
    run()
