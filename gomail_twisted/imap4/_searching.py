# -*- test-case-name: tests.test_imap4_searching -*-
"""
SEARCH and UID SEARCH (RFC 3501 6.4.4, 6.4.8), with CONDSTORE's C{MODSEQ}
criterion (RFC 7162 3.1.5).

The key is compiled once (L{gomail_twisted.imap4._search}) and tried on
each message with what the store knows without reading it (flags, size,
dates, numbers); only the messages still undecided are read, in the
store's threads (L{IFolder.scan}), and only as far as the key needs: the
header block for header keys, the whole message for body text.
"""

from __future__ import annotations

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
from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.maildir.interfaces import MessageInfo

#: How much of a message is read for a search of header fields: header
#: blocks are rarely longer, and fields past it are not searched.
HEADER_LIMIT = 256 * 1024


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
        undecided: dict[int, tuple[int, MessageInfo]] = {}
        for seq, uid in enumerate(uids, 1):
            info = selected.info(uid)
            if info is None:
                # Expunged elsewhere, not yet told: nothing to match.
                continue
            outcome = matcher.evaluate(info, seq)
            if outcome:
                found[seq] = info
            elif outcome is None:
                undecided[uid] = (seq, info)
        if not undecided:
            return self._answer(command, matcher, found)
        header = matcher.needs is Needs.HEADER

        def test(uid: int, data: bytes) -> bool:
            seq, info = undecided[uid]
            if header:
                return bool(matcher.evaluate(info, seq, header=data))
            return bool(matcher.evaluate(info, seq, full=data))

        def scanned(results: list[tuple[int, bool]]) -> IMAPStatus:
            for uid, matched in results:
                if matched:
                    seq, info = undecided[uid]
                    found[seq] = info
            return self._answer(command, matcher, found)

        d: Deferred[list[tuple[int, bool]]] = folder.scan(
            list(undecided), test, HEADER_LIMIT if header else None
        )
        return d.addCallback(scanned)

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
