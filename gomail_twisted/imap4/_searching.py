# -*- test-case-name: tests.test_imap4_searching -*-
"""
SEARCH and UID SEARCH (RFC 3501 6.4.4, 6.4.8), with CONDSTORE's C{MODSEQ}
criterion (RFC 7162 3.1.5).

The key is compiled once (L{gomail_twisted.imap4._search}) and tried on
each message with what the store knows without reading it (flags, size,
dates, numbers).  Then on what the store keeps of each remaining message
for SEARCH (L{IFolder.cachedData}, made once per message, then read from
the store's cache rather than from the message;
L{gomail_twisted.imap4._searchindex}): a key that compares header fields
on the record of the common ones, a key that searches text on the index
of the message's text.  Only the messages still undecided are read, in
the store's threads (L{IFolder.scan}), and only as far as the key needs:
the header block for header keys, the whole message for body text.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import count
from operator import attrgetter

from twisted.internet.defer import Deferred

from gomail_twisted.imap4._base import ServerBase
from gomail_twisted.imap4._commands import Command, Search
from gomail_twisted.imap4._search import (
    Needs,
    SearchContext,
    SearchMatcher,
    compileSearch,
    searchResponse,
)
from gomail_twisted.imap4._searchindex import (
    FIELDS_KIND,
    HEADER_LIMIT,
    TEXT_INDEX_KIND,
    CachedFields,
    TextIndex,
    searchFields,
    textIndex,
)
from gomail_twisted.imap4._selected import SelectedMailbox
from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.maildir.interfaces import IFolder, MessageInfo

__all__ = ["HEADER_LIMIT", "SearchCommands"]

#: Messages by UID, with their sequence numbers.
_Undecided = dict[int, tuple[int, MessageInfo]]

_UID = attrgetter("uid")


class SearchCommands(ServerBase):
    """
    SEARCH.
    """

    def doSearch(self, command: Command) -> object:
        arguments = command.arguments
        assert isinstance(arguments, Search)
        selected = self.selected
        assert selected is not None
        folder = selected.folder
        uids = list(selected.uids)
        context = SearchContext(
            len(uids), uids[-1] if uids else 0, recent=frozenset(folder.recent)
        )
        try:
            matcher = compileSearch(arguments.key, context)
        except ValueError as e:
            return IMAPStatus.bad(f"Cannot search: {e}")
        if matcher.usesModSeq:
            # A CONDSTORE-enabling command (RFC 7162 3.1).
            self.enabled.add("CONDSTORE")
            selected.condstore = True
        found: dict[int, MessageInfo] = {}
        # A message expunged elsewhere, the client not yet told, has no
        # info: nothing to match.
        infos = _infos(selected, uids)
        if not matcher.decidesUnread:
            undecided: _Undecided = {
                uid: (seq, info)
                for seq, uid, info in zip(count(1), uids, infos)
                if info is not None
            }
        else:
            undecided = {}
            evaluate = matcher.evaluate
            for seq, uid, info in zip(count(1), uids, infos):
                if info is None:
                    continue
                outcome = evaluate(info, seq)
                if outcome:
                    found[seq] = info
                elif outcome is None:
                    undecided[uid] = (seq, info)
        if not undecided:
            return self._answer(command, matcher, found)
        return Deferred.fromCoroutine(
            self._read(command, folder, matcher, found, undecided)
        )

    async def _read(
        self,
        command: Command,
        folder: IFolder,
        matcher: SearchMatcher,
        found: dict[int, MessageInfo],
        undecided: _Undecided,
    ) -> IMAPStatus:
        """
        Decide the messages the store's facts did not: from the record of
        their header fields when the key compares fields, from the index
        of their text when it searches text, then by reading those still
        undecided.

        @return: the tagged status, once the untagged SEARCH is sent.
        """
        fields: dict[int, CachedFields] = {}
        if matcher.readsFields:
            records: dict[int, bytes] = await folder.cachedData(
                list(undecided), FIELDS_KIND, searchFields
            )
            _decideFields(matcher, records, found, undecided, fields)
        if undecided and matcher.readsTextIndex:
            indexes: dict[int, bytes] = await folder.cachedData(
                list(undecided), TEXT_INDEX_KIND, textIndex
            )
            _decideText(matcher, indexes, found, undecided, fields)
        if undecided:
            header = matcher.needs is Needs.HEADER
            evaluate = matcher.evaluate

            def test(uid: int, data: bytes) -> bool:
                seq, info = undecided[uid]
                if header:
                    return bool(evaluate(info, seq, header=data))
                return bool(evaluate(info, seq, full=data))

            results: list[tuple[int, bool]] = await folder.scan(
                list(undecided), test, HEADER_LIMIT if header else None
            )
            for uid, matched in results:
                if matched:
                    seq, info = undecided[uid]
                    found[seq] = info
        return self._answer(command, matcher, found)

    def _answer(
        self, command: Command, matcher: SearchMatcher, found: dict[int, MessageInfo]
    ) -> IMAPStatus:
        """
        Send the untagged SEARCH response.

        @return: the tagged status.
        """
        ordered = sorted(found)
        numbers = [found[seq].uid for seq in ordered] if command.uid else ordered
        modSeq = matcher.highestModSeq(found.values())
        self.write(searchResponse(numbers, modSeq))
        return IMAPStatus.ok("SEARCH completed")


def _infos(selected: SelectedMailbox, uids: list[int]) -> Sequence[MessageInfo | None]:
    """
    What the store knows now of each message the client knows (as
    L{SelectedMailbox.infos}), at once when they are the folder's messages.
    """
    messages = selected.folder.messages()
    if len(messages) == len(uids) and list(map(_UID, messages)) == uids:
        return messages
    return selected.infos(uids)


def _decideFields(
    matcher: SearchMatcher,
    records: dict[int, bytes],
    found: dict[int, MessageInfo],
    undecided: _Undecided,
    fields: dict[int, CachedFields],
) -> None:
    """
    Try the key on the store's records of header fields: the messages they
    decide leave C{undecided}, those that match join C{found}; the records
    of the others go in C{fields}.  A record that does not decode is
    passed over: its message is read.
    """
    evaluate = matcher.evaluate
    for uid, record in records.items():
        seq, info = undecided[uid]
        try:
            cached = CachedFields(record)
        except ValueError:
            continue
        outcome = evaluate(info, seq, fields=cached)
        if outcome is None:
            fields[uid] = cached
            continue
        del undecided[uid]
        if outcome:
            found[seq] = info


def _decideText(
    matcher: SearchMatcher,
    indexes: dict[int, bytes],
    found: dict[int, MessageInfo],
    undecided: _Undecided,
    fields: dict[int, CachedFields],
) -> None:
    """
    Try the key on the store's indexes of text (with the records of
    header fields in C{fields}): the messages they decide leave
    C{undecided}, those that match join C{found}.  An index that does not
    decode is passed over: its message is read.
    """
    evaluate = matcher.evaluate
    for uid, record in indexes.items():
        seq, info = undecided[uid]
        try:
            index = TextIndex(record)
        except ValueError:
            continue
        outcome = evaluate(info, seq, fields=fields.get(uid), textIndex=index)
        if outcome is None:
            continue
        del undecided[uid]
        if outcome:
            found[seq] = info
