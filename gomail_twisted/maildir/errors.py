# -*- test-case-name: tests.test_maildir_store -*-
"""
The store's errors.  Each server turns them into its own replies (SMTP 452
4.3.1 for L{StoreFull}, IMAP C{NO [OVERQUOTA]}, ...); the store never speaks
a protocol.
"""

from __future__ import annotations


class StoreError(Exception):
    """
    The store could not do what was asked.  The message is for logs and for
    the operator, never secret, and may be shown to the account's owner.
    """


class StoreFailed(StoreError):
    """
    A temporary failure (an I/O error, a lock that could not be taken): try
    again later.  Nothing already accepted was lost.
    """


class StoreFull(StoreFailed):
    """
    The disk, or a quota, is full.  Nothing already accepted was lost.
    """


class InvalidName(StoreError):
    """
    A folder or account name the store refuses: empty, with a forbidden
    character or component, or reaching outside its account.
    """


class NameTooLong(InvalidName):
    """
    A folder or account name longer than the file system (or the store)
    allows.
    """


class NoSuchFolder(StoreError):
    """
    The folder does not exist (or was deleted while open).
    """


class FolderExists(StoreError):
    """
    A folder of that name exists already.
    """


class NoSuchAccount(StoreError):
    """
    The account does not exist, and the operation does not create it.
    """


class NoSuchMessage(StoreError):
    """
    A message asked for by UID is not (or no longer) in the folder.
    """


class ReadOnlyFolder(StoreError):
    """
    The folder was opened read-only (IMAP EXAMINE): it changes nothing.
    """


class TooManyKeywords(StoreError):
    """
    The folder cannot hold another keyword (a Maildir folder has 26 letters
    for them, as Dovecot's C{dovecot-keywords} does).
    """
