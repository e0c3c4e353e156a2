# -*- test-case-name: tests.test_maildir_store -*-
"""
The disk side of one Maildir folder: what its files and its UID file say,
and every change to them.

Everything here blocks: it runs in the store's thread pool, one call at a
time per folder (the folder's lock is held), and returns what changed, so
that the reactor thread can update the views and tell their listeners.

A listing of C{new/} and C{cur/} is made only when one of them, or the UID
file, changed since the last one: a directory whose C{st_mtime_ns},
inode and size are as remembered, and whose time stamp was already older
than the file system's granularity when it was listed, cannot have
changed.  Changes this process makes itself update what is remembered, so
they force no listing.  The price: another process's change made in the
same tick of the directory's time stamp as one of ours is seen only at the
directory's next change, or by the watcher of a view with listeners.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from pathlib import Path

from gomail_twisted.maildir import _files
from gomail_twisted.maildir._changes import Changes, buildInfos
from gomail_twisted.maildir._files import (
    FLAG_LETTERS,
    flagsFromLetters,
    lettersFromFlags,
    parseName,
)
from gomail_twisted.maildir._uidlist import UIDList
from gomail_twisted.maildir.errors import NoSuchMessage, TooManyKeywords
from gomail_twisted.maildir.interfaces import FlagChange, MessageInfo

KEYWORDS_FILE = "dovecot-keywords"
_SUBS = ("new", "cur")
#: A message's key: its file name up to the first "," or ":".
_KEY = re.compile("^[^,:\n]*", re.MULTILINE)


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_mtime_ns, st.st_ino, st.st_size)


class FolderDisk:
    """
    One folder's files, as this process last saw them.

    @ivar infos: each message's UID to what is known of it.
    @ivar files: each message's UID to its file, C{new/name} or C{cur/name}.
    @ivar keywords: the folder's keywords, by letter index.
    """

    def __init__(self, path: Path) -> None:
        """
        @param path: the folder's Maildir.
        """
        self.path = path
        self._prefix = f"{path}/"
        self._flagCache: dict[str, frozenset[str]] = {}
        self.uidlist = UIDList(path)
        self.infos: dict[int, MessageInfo] = {}
        self.files: dict[int, str] = {}
        self.inNew: set[int] = set()
        self.keywords: list[str] = []
        self.keywordIndex: dict[str, int] = {}
        self._keywordsStat: tuple[int, int, int] | None = None
        self._stats: dict[str, tuple[tuple[int, int, int], bool]] = {}
        self._validity = 0

    # Keywords (Dovecot's dovecot-keywords: "<index> <keyword>" a line).

    def _loadKeywords(self) -> bool:
        path = self.path / KEYWORDS_FILE
        try:
            st = os.stat(path)
        except FileNotFoundError:
            changed = self._keywordsStat is not None
            self._keywordsStat = None
            if changed:
                self.keywords, self.keywordIndex = [], {}
                self._flagCache.clear()
            return changed
        if _identity(st) == self._keywordsStat:
            return False
        keywords: list[str] = []
        for line in path.read_text("utf-8", "replace").splitlines():
            index, _, keyword = line.partition(" ")
            if index.isdigit() and keyword and int(index) < 26:
                while len(keywords) <= int(index):
                    keywords.append("")
                keywords[int(index)] = keyword
        self.keywords = keywords
        self.keywordIndex = {k: i for i, k in enumerate(keywords) if k}
        self._flagCache.clear()
        self._keywordsStat = _identity(st)
        return True

    def _addKeywords(self, wanted: Iterable[str]) -> None:
        """
        Give letters to keywords that have none; the UID file's lock is held.

        @raise TooManyKeywords: when the 26 letters are taken.
        """
        self._loadKeywords()
        missing = [k for k in dict.fromkeys(wanted) if k not in self.keywordIndex]
        if not missing:
            return
        keywords = list(self.keywords)
        for keyword in missing:
            try:
                keywords[keywords.index("")] = keyword
            except ValueError:
                if len(keywords) >= 26:
                    raise TooManyKeywords(f"no letter left for {keyword}") from None
                keywords.append(keyword)
        data = "".join(f"{i} {k}\n" for i, k in enumerate(keywords) if k).encode()
        temporary = _files.temporaryPath(self.path, KEYWORDS_FILE)
        _files.writeSynced(temporary, data)
        try:
            os.rename(temporary, self.path / KEYWORDS_FILE)
        except BaseException:
            _files.unlinkQuietly(temporary)
            raise
        self._loadKeywords()

    def _letters(self, flags: frozenset[str]) -> str:
        keywords = [f for f in flags if f not in FLAG_LETTERS]
        if keywords:
            with self.uidlist.locked():
                self._addKeywords(keywords)
        return lettersFromFlags(flags, self.keywordIndex)

    # Directory stats.

    def _fresh(self, sub: str, st: os.stat_result) -> bool:
        remembered = self._stats.get(sub)
        return remembered is not None and remembered == (_identity(st), True)

    def _remember(self, sub: str, st: os.stat_result, listedAt: float) -> None:
        # Second-granular time stamps (ext3, some network file systems)
        # need a second's margin; finer ones, a few clock ticks.
        margin = 1.0 if st.st_mtime_ns % 1_000_000_000 == 0 else 0.05
        trusted = listedAt - st.st_mtime_ns / 1e9 > margin
        self._stats[sub] = (_identity(st), trusted)

    def _touched(self, sub: str, before: tuple[int, int, int]) -> None:
        """
        Remember a directory after a change of ours, when nothing else had
        changed it before.
        """
        remembered = self._stats.get(sub)
        if remembered is not None and remembered[0] == before:
            st = os.stat(self.path / sub)
            self._stats[sub] = (_identity(st), remembered[1])

    def _statSub(self, sub: str) -> tuple[int, int, int]:
        return _identity(os.stat(self._prefix + sub))

    # Reading the folder.

    def _info(self, uid: int, name: str) -> MessageInfo:
        u = self.uidlist
        i = name.find(":2,")
        letters = name[i + 3 :] if i >= 0 else ""
        flags = self._flagCache.get(letters)
        if flags is None:
            flags = self._flagCache[letters] = flagsFromLetters(letters, self.keywords)
        return MessageInfo(
            uid, flags, u.sizes[uid], float(u.dates[uid]), u.modSeqs[uid]
        )

    def _list(self, subs: tuple[str, ...] = _SUBS) -> dict[str, str]:
        found: dict[str, str] = {}
        for sub in subs:
            prefix = sub + "/"
            names = os.listdir(self._prefix + sub)
            joined = "\n".join(names)
            if (
                "\n." in joined
                or joined[:1] == "."
                or len(names) != (joined.count("\n") + 1 if names else 0)
            ):
                names = [n for n in names if n[0] != "." and "\n" not in n]
                joined = "\n".join(names)
            if not names:
                continue
            # In bulk: each name's key (up to the first "," or ":") and
            # its path, from one string of all the names.
            keys = _KEY.findall(joined)
            paths = (prefix + joined.replace("\n", "\n" + prefix)).split("\n")
            found.update(zip(keys, paths, strict=True))
        return found

    def scan(
        self, force: bool | tuple[str, ...] = False, claim: bool = False
    ) -> Changes:
        """
        Look at the folder again: list the directories that changed (only
        C{new/}, after a delivery), find the messages that came, went or
        changed their flags, and give UIDs to those that have none.

        @param force: list both directories (C{True}), or these, even when
            they seem unchanged.
        @param claim: move messages from C{new/} to C{cur/}.
        """
        changes = Changes()
        prefix = self._prefix
        try:
            stats = {sub: os.stat(prefix + sub) for sub in _SUBS}
        except FileNotFoundError:
            changes.gone = True
            return changes
        listedAt = time.time()
        if not self.uidlist.unchanged():
            self.uidlist.load()
        if self.uidlist.uidValidity != self._validity:
            if self._validity:
                changes.reset = True
            self._validity = self.uidlist.uidValidity
            self.infos.clear()
            self.files.clear()
            self.inNew.clear()
            force = True
        if self._loadKeywords():
            force = True
        listed: tuple[str, ...]
        if force is True:
            listed = _SUBS
        else:
            listed = tuple(
                sub
                for sub, st in stats.items()
                if (force and sub in force) or not self._fresh(sub, st)
            )
        if listed:
            self._reconcile(self._list(listed), changes, listed)
            for sub in listed:
                self._remember(sub, stats[sub], listedAt)
        if claim and self.inNew:
            self._claim(changes)
        return changes

    def _firstLoad(self, found: dict[str, str], changes: Changes) -> bool:
        """
        The common first look at a folder, in bulk: every file has a UID
        and every UID a file.

        @return: whether it was that case (otherwise nothing was changed).
        """
        u = self.uidlist
        if len(found) != len(u.keys):
            return False
        # The UID file's records are in ascending UID order.
        uidList = list(u.keys)
        paths = list(map(found.get, u.keys.values()))
        if None in paths:
            return False
        present: list[str] = paths  # type: ignore[assignment]
        letterList = [path.partition(":2,")[2] for path in present]
        cache, keywords = self._flagCache, self.keywords
        for letters in set(letterList).difference(cache):
            cache[letters] = flagsFromLetters(letters, keywords)
        self.files.update(zip(uidList, present, strict=True))
        self.inNew.update(u.uids[k] for k, path in found.items() if path[0] == "n")
        infos = buildInfos(
            uidList,
            map(cache.__getitem__, letterList),
            map(u.sizes.__getitem__, uidList),
            map(float, map(u.dates.__getitem__, uidList)),
            map(u.modSeqs.__getitem__, uidList),
        )
        self.infos.update(zip(uidList, infos, strict=True))
        changes.added = infos
        return True

    def _reconcile(
        self, found: dict[str, str], changes: Changes, listed: tuple[str, ...]
    ) -> None:
        """
        Compare a listing of some directories with what we knew of them.
        """
        u = self.uidlist
        files, infos = self.files, self.infos
        if not files and listed == _SUBS and self._firstLoad(found, changes):
            return
        unknown: list[str] = []
        known: list[tuple[int, str]] = []
        seen: set[int] = set()
        for key, path in found.items():
            uid = u.uids.get(key)
            if uid is None:
                unknown.append(key)
                continue
            seen.add(uid)
            if files.get(uid) != path:
                known.append((uid, path))
        full = listed == _SUBS
        if full:
            candidates: Iterable[int] = files
        elif listed == ("new",):
            candidates = self.inNew
        else:
            candidates = [uid for uid in files if uid not in self.inNew]
        if any(uid not in seen for uid in candidates) or (
            full and len(seen) != len(u.keys)
        ):
            # A file renamed while we listed may have been missed (or moved
            # from new/ to cur/ by another process): look at both again.
            again = self._list()
            found.update(again)
            listedKeys = set(unknown)
            for key, path in again.items():
                uid = u.uids.get(key)
                if uid is None:
                    if key not in listedKeys:
                        unknown.append(key)
                elif uid not in seen:
                    seen.add(uid)
                    if files.get(uid) != path:
                        known.append((uid, path))
            candidates = files
            full = True
        stale = [uid for uid in u.keys if uid not in seen] if full else []
        missing = [uid for uid in candidates if uid not in seen]
        added: list[tuple[str, int, int]] = []
        # UIDs in order of arrival (RFC 3501 2.3.1.1).
        for key in sorted(unknown, key=_files.arrivalKey):
            path = found[key]
            filePath = self._prefix + path
            try:
                st = os.stat(filePath)
                wsize = parseName(path[4:])[3]
                crlf = wsize if wsize is not None else _files.fileCRLFSize(filePath)
            except FileNotFoundError:
                continue
            added.append((key, int(st.st_mtime), crlf))
        # A flag change by another process that already raised the
        # mod-sequence is not raised again.
        modified = [
            uid
            for uid, path in known
            if uid in files
            and path.partition(":2,")[2] != files[uid].partition(":2,")[2]
            and u.modSeqs.get(uid) == infos[uid].modSeq
        ]
        if added or modified or stale:
            uids = u.commit(added, modified, stale)
            for (key, _, _), uid in zip(added, uids, strict=True):
                known.append((uid, found[key]))
        for uid in missing:
            del files[uid], infos[uid]
            self.inNew.discard(uid)
            changes.expunged.append(uid)
        changes.expunged.sort()
        newUIDs = []
        for uid, path in known:
            if uid not in u.keys:
                continue
            if path[0] == "n":
                self.inNew.add(uid)
            else:
                self.inNew.discard(uid)
            if uid in files:
                files[uid] = path
                info = self._info(uid, path)
                if info != infos[uid]:
                    infos[uid] = info
                    changes.changed.append(info)
            else:
                files[uid] = path
                newUIDs.append(uid)
        newUIDs.sort()
        if newUIDs and infos and newUIDs[0] < next(reversed(infos)):
            # A message that another process numbered before ours.
            ordered = sorted([*infos, *newUIDs])
            old = infos
            self.infos = infos = {}
            for uid in ordered:
                infos[uid] = old[uid] if uid in old else self._info(uid, files[uid])
            changes.added.extend(infos[uid] for uid in newUIDs)
        else:
            for uid in newUIDs:
                info = infos[uid] = self._info(uid, files[uid])
                changes.added.append(info)

    def _claim(self, changes: Changes) -> None:
        """
        Move the messages in C{new/} to C{cur/}, as the first session to
        see them does.
        """
        before = {sub: self._statSub(sub) for sub in _SUBS}
        for uid in sorted(self.inNew):
            path = self.files[uid]
            name = path[4:]
            target = "cur/" + (name if ":2," in name else name + ":2,")
            try:
                os.rename(self.path / path, self.path / target)
            except FileNotFoundError:
                continue
            self.files[uid] = target
            changes.claimed.append(uid)
        self.inNew.clear()
        for sub in _SUBS:
            self._touched(sub, before[sub])

    def pathOf(self, uid: int) -> Path:
        """
        @raise NoSuchMessage: when the message is not in the folder.
        """
        path = self.files.get(uid)
        if path is None:
            raise NoSuchMessage(f"no message with UID {uid}")
        return self.path / path

    def read(
        self, uid: int, start: int, length: int | None
    ) -> tuple[bytes | None, Changes | None]:
        """
        Read part of a message's CRLF form, looking for its file again if
        it was renamed behind our back.

        @return: the bytes (L{None} when the message is gone), and what a
            rescan found, if one was needed.
        """
        try:
            return _files.readCRLF(str(self.pathOf(uid)), start, length), None
        except FileNotFoundError:
            pass
        changes = self.scan(force=True)
        try:
            return _files.readCRLF(str(self.pathOf(uid)), start, length), changes
        except (FileNotFoundError, NoSuchMessage):
            return None, changes

    # Changing the folder.

    def _keptLetters(self, letters: str) -> str:
        """
        The letters of a C{:2,} suffix that stand for no flag we know (C{P},
        keywords without a name): a flag change keeps them.
        """
        kept = ""
        for letter in letters:
            if letter in _files.LETTER_FLAGS:
                continue
            index = ord(letter) - 97
            if 0 <= index < 26 and index < len(self.keywords) and self.keywords[index]:
                continue
            kept += letter
        return kept

    def setFlags(
        self,
        uids: Iterable[int],
        flags: frozenset[str],
        change: FlagChange,
        unchangedSince: int | None,
    ) -> tuple[Changes, list[int], bool]:
        """
        Rename the messages' files within C{cur/} to their new flags and
        raise their mod-sequences.

        @return: the messages changed, those left alone for
            C{unchangedSince}, and whether a file had gone (a rescan is due).
        """
        if change is not FlagChange.REMOVE:
            keywords = [f for f in flags if f not in FLAG_LETTERS]
            if keywords:
                with self.uidlist.locked():
                    self._addKeywords(keywords)
        changes = Changes()
        unchanged: list[int] = []
        before = {sub: self._statSub(sub) for sub in _SUBS}
        done: list[tuple[int, str]] = []
        lost = False
        prefix = self._prefix
        cache: dict[tuple[str, frozenset[str]], str] = {}
        for uid in sorted(set(uids)):
            info = self.infos.get(uid)
            if info is None:
                continue
            if unchangedSince is not None and info.modSeq > unchangedSince:
                unchanged.append(uid)
                continue
            if change is FlagChange.REPLACE:
                new = flags
            elif change is FlagChange.ADD:
                new = info.flags | flags
            else:
                new = info.flags - flags
            if new == info.flags:
                continue
            path = self.files[uid]
            base, _, old = path[4:].partition(":2,")
            letters = cache.get((old, new))
            if letters is None:
                letters = cache[old, new] = "".join(
                    sorted(
                        lettersFromFlags(new, self.keywordIndex)
                        + self._keptLetters(old)
                    )
                )
            target = f"cur/{base.partition(':')[0]}:2,{letters}"
            try:
                os.rename(prefix + path, prefix + target)
            except FileNotFoundError:
                lost = True
                continue
            done.append((uid, target))
        if done:
            try:
                self.uidlist.commit(modified=[uid for uid, _ in done])
            finally:
                for uid, target in done:
                    self.files[uid] = target
                    self.inNew.discard(uid)
            if self._restarted(changes):
                return changes, unchanged, False
            for uid, target in done:
                info = self.infos[uid] = self._info(uid, target)
                changes.changed.append(info)
        for sub in _SUBS:
            self._touched(sub, before[sub])
        return changes, unchanged, lost

    def setFlagsAndRescan(
        self,
        uids: Iterable[int],
        flags: frozenset[str],
        change: FlagChange,
        unchangedSince: int | None,
    ) -> tuple[Changes, list[int], Changes | None]:
        """
        L{setFlags}, then a rescan if a file had gone behind our back.
        """
        changes, unchanged, lost = self.setFlags(uids, flags, change, unchangedSince)
        return changes, unchanged, self.scan(force=True) if lost else None

    def expungeAndRescan(
        self, uids: Iterable[int] | None
    ) -> tuple[Changes, Changes | None]:
        """
        L{expunge}, then a rescan if a file had gone behind our back.
        """
        changes, lost = self.expunge(uids)
        return changes, self.scan(force=True) if lost else None

    def expunge(self, uids: Iterable[int] | None) -> tuple[Changes, bool]:
        """
        Remove the messages flagged C{\\Deleted} (of C{uids}, if given).

        @return: what was removed, and whether a file had gone.
        """
        from gomail_twisted.maildir.interfaces import DELETED

        candidates = self.infos.keys() if uids is None else set(uids)
        doomed = sorted(
            uid
            for uid in candidates
            if uid in self.infos and DELETED in self.infos[uid].flags
        )
        changes = Changes()
        before = {sub: self._statSub(sub) for sub in _SUBS}
        removed: list[int] = []
        lost = False
        prefix, files = self._prefix, self.files
        for uid in doomed:
            try:
                os.unlink(prefix + files[uid])
            except FileNotFoundError:
                lost = True
                continue
            removed.append(uid)
        # Should the commit fail, the files are gone all the same: the next
        # scan finds them missing, records it and tells the views.
        if removed:
            self.uidlist.commit(expunged=removed)
        for sub in _SUBS:
            self._touched(sub, before[sub])
        if self._restarted(changes):
            return changes, False
        for uid in removed:
            del self.files[uid], self.infos[uid]
            self.inNew.discard(uid)
        changes.expunged = removed
        return changes, lost

    def _restarted(self, changes: Changes) -> bool:
        """
        After a commit: if the UID file had to start again (it was found
        corrupt), look at the folder afresh and say so in C{changes}.
        """
        if not self._validity or self.uidlist.uidValidity == self._validity:
            return False
        fresh = self.scan(force=True)
        changes.reset = True
        changes.added, changes.changed, changes.expunged = [], [], []
        changes.claimed = fresh.claimed
        return True

    def _tracked(self) -> bool:
        return self._validity != 0 and self._validity == self.uidlist.uidValidity

    def _record(
        self, entries: list[tuple[str, str, int, int]], changes: Changes
    ) -> list[int]:
        """
        Give UIDs to files just put in C{cur/}; on failure remove them.

        @param entries: each file's name, key, internal date and CRLF size.
        """
        try:
            uids = self.uidlist.commit(
                [(key, date, size) for _, key, date, size in entries]
            )
        except BaseException:
            for name, _, _, _ in entries:
                _files.unlinkQuietly(self.path / "cur" / name)
            raise
        if self._restarted(changes):
            return uids
        if self._tracked():
            for (name, _, _, _), uid in zip(entries, uids, strict=True):
                self.files[uid] = "cur/" + name
                info = self.infos[uid] = self._info(uid, "cur/" + name)
                changes.added.append(info)
        return uids

    def append(
        self, message: bytes, flags: frozenset[str], date: float
    ) -> tuple[int, Changes]:
        """
        Store a new message: write it under C{tmp/} and fsync, then
        L{publish} it.
        """
        data = _files.diskForm(message)
        unique = _files.uniqueName()
        _files.writeSynced(self.path / "tmp" / unique, data, date)
        return self.publish(unique, len(data), _files.crlfSize(data), flags, date)

    def publish(
        self,
        unique: str,
        diskSize: int,
        crlfSize: int,
        flags: frozenset[str],
        date: float,
    ) -> tuple[int, Changes]:
        """
        Put a message written and fsynced as C{tmp/unique} into C{cur/}
        with its flags, fsync C{cur/}, then give it a UID.  On failure the
        message is removed, from C{tmp/} or from C{cur/}.

        @param unique: its file's name in C{tmp/}, from L{_files.uniqueName}.
        @param diskSize: the file's size.
        @param crlfSize: the size of its CRLF form.
        @param flags: its flags.
        @param date: its internal date.
        @return: its UID, and what changed.
        """
        temporary = self.path / "tmp" / unique
        try:
            letters = self._letters(flags)
            name = f"{_files.baseName(unique, diskSize, crlfSize)}:2,{letters}"
            before = self._statSub("cur")
            os.rename(temporary, self.path / "cur" / name)
        except BaseException:
            _files.unlinkQuietly(temporary)
            raise
        changes = Changes()
        try:
            _files.fsyncDirectory(self.path / "cur")
        except BaseException:
            _files.unlinkQuietly(self.path / "cur" / name)
            raise
        [uid] = self._record([(name, unique, int(date), crlfSize)], changes)
        self._touched("cur", before)
        return uid, changes

    def curStat(self) -> tuple[int, int, int]:
        """
        C{cur/} as it is now, for L{release}.
        """
        return self._statSub("cur")

    def snapshot(self, uids: Iterable[int]) -> list[tuple[int, Path, MessageInfo]]:
        """
        The files of some messages, ascending, those gone passed over.
        """
        return [
            (uid, self.path / self.files[uid], self.infos[uid])
            for uid in sorted(set(uids))
            if uid in self.infos
        ]

    def receive(
        self, sources: list[tuple[int, Path, MessageInfo]], move: bool
    ) -> tuple[list[int], list[int], Changes]:
        """
        Copy (hard link) or move files of another folder into C{cur/},
        with their flags and dates, and give them UIDs.

        @return: the source UIDs taken, their new UIDs, what changed here.
        """
        keywords = {
            f for _, _, info in sources for f in info.flags
        } - FLAG_LETTERS.keys()
        if keywords:
            with self.uidlist.locked():
                self._addKeywords(keywords)
        before = self._statSub("cur")
        entries: list[tuple[str, str, int, int]] = []
        taken: list[int] = []
        placed: list[tuple[Path, Path]] = []
        try:
            for uid, source, info in sources:
                _, _, diskSize, _ = parseName(source.name)
                if diskSize is None:
                    diskSize = os.stat(source).st_size
                unique = _files.uniqueName()
                letters = "".join(
                    sorted(lettersFromFlags(info.flags, self.keywordIndex))
                )
                name = f"{_files.baseName(unique, diskSize, info.size)}:2,{letters}"
                target = self.path / "cur" / name
                try:
                    if move:
                        os.rename(source, target)
                    else:
                        _files.hardLinkOrCopy(str(source), str(target))
                except FileNotFoundError:
                    continue
                placed.append((source, target))
                taken.append(uid)
                entries.append((name, unique, int(info.internalDate), info.size))
            _files.fsyncDirectory(self.path / "cur")
        except BaseException:
            for source, target in reversed(placed):
                if move:
                    try:
                        os.rename(target, source)
                    except OSError:
                        pass
                else:
                    _files.unlinkQuietly(target)
            raise
        changes = Changes()
        uids = self._record(entries, changes) if entries else []
        self._touched("cur", before)
        return taken, uids, changes

    def release(self, uids: list[int], before: tuple[int, int, int]) -> Changes:
        """
        Forget messages moved to another folder, and record that they left.

        @param before: C{cur/} as it was before they were moved.
        """
        changes = Changes()
        gone = [uid for uid in uids if uid in self.files]
        if gone:
            self.uidlist.commit(expunged=gone)
        self._touched("cur", before)
        if self._restarted(changes):
            return changes
        for uid in gone:
            del self.files[uid], self.infos[uid]
            self.inNew.discard(uid)
        changes.expunged = sorted(gone)
        return changes

    def counts(self) -> tuple[int, int, int]:
        """
        @return: the UIDVALIDITY, next UID and highest mod-sequence.
        """
        u = self.uidlist
        return u.uidValidity, u.nextUID, u.highestModSeq
