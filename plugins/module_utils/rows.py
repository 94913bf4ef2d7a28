# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Named rows of the mail database, as the provisioning modules read and write them.

A ``...Row`` is what a module reads (its fields are the columns of the SELECT,
in order); a ``...Values`` is what it writes (the columns of the INSERT, in
order); an ``...Entry`` is one validated entry of a module's input. All are
tuples, so PyMySQL takes them as they are, and small enough for 100,000 of them.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from collections import namedtuple

from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import placeholders

# What the modules read.
DomainRow = namedtuple('DomainRow', 'name kind active relay_host')
MailboxRow = namedtuple('MailboxRow', 'email password quota mailbox_host maildir active')
MailboxHostRow = namedtuple('MailboxHostRow', 'name address state weight')
# A mailbox host as placement sees it (validation.Placer).
HostPlacement = namedtuple('HostPlacement', 'state weight')

# Validated entries of the bulk forms (index: the entry's position in the list, None in the single form).
DomainEntry = namedtuple('DomainEntry', 'index name kind relay_host active state')
AliasEntry = namedtuple('AliasEntry', 'index source domain destinations active state')

# What the modules write.
DomainValues = namedtuple('DomainValues', 'name kind relay_host active')
MailboxValues = namedtuple('MailboxValues', 'email local_part domain password quota mailbox_host maildir active')
AliasValues = namedtuple('AliasValues', 'source destination domain active')


def columns(row_type):
    """'a, b, c' for the fields of a row type."""
    return ', '.join(row_type._fields)


def select_sql(row_type, table, where):
    """'SELECT <the row's columns> FROM table WHERE where' (callers add IN (...) or = %s)."""
    return 'SELECT %s FROM %s WHERE %s' % (columns(row_type), table, where)


def insert_sql(row_type, table):
    """'INSERT INTO table (<columns>) VALUES (%s, ...)' for rows of that type."""
    return 'INSERT INTO %s (%s) VALUES (%s)' % (table, columns(row_type), placeholders(len(row_type._fields)))


INSERT_ALIAS_SQL = insert_sql(AliasValues, 'alias')
