# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Maildir names and flags: Dovecot's files, a message's unique base name, folders and mailboxes.

Paths are relative to the top of a tree, with ``/``; ``''`` is the top itself.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

# Files Dovecot rebuilds by itself: indexes, caches, transaction logs, the
# mailbox list index and its log, and the Maildir++ quota file.
INDEX_EXCLUDES = ('dovecot.index*', 'dovecot.list.index*', 'dovecot.mailbox.log*', 'maildirsize')
# Lock files mean nothing on another host.
LOCK_EXCLUDES = ('dovecot*.lock',)
FOLDER_INDEX_RE = re.compile(r'^dovecot\.index(\..*)?$')
ROOT_INDEX_RE = re.compile(r'^(dovecot\.list\.index(\..*)?|maildirsize)$')
UIDLIST = 'dovecot-uidlist'


def join(rel, name):
    """A name inside the folder rel."""
    return rel + '/' + name if rel else name


def base_name(name, sep):
    """'cur/1700000000.M1P2.host,S=10:2,RS' -> '1700000000.M1P2.host,S=10'."""
    return name[4:].split(sep, 1)[0]


def top_maildir(folder, maildirs):
    """The mailbox a folder belongs to: the outermost of the Maildirs nested around it."""
    top = folder
    while top:
        parent = top.rsplit('/', 1)[0] if '/' in top else ''
        if parent not in maildirs:
            break
        top = parent
    return top


def is_message(path, maildirs):
    """Whether a path (as rsync names it) is a message: a file in cur/ or new/ of one of the Maildirs."""
    parts = path.rsplit('/', 2)
    if len(parts) == 2:
        return parts[0] in ('cur', 'new') and '' in maildirs
    if len(parts) == 3:
        return parts[1] in ('cur', 'new') and parts[0] in maildirs and parts[2] != ''
    return False
