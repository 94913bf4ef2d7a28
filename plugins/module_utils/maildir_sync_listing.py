# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""maildir_sync's listing of a tree: Maildirs, message names (no stat), Dovecot's control and index files.

A local tree is read with os.scandir and os.listdir, a remote one with one ``find`` over SSH
(``list_script``; the primary's forced command allows exactly that command). ``tmp/`` is never read.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import os
import shlex

from .maildir_sync_maildir import FOLDER_INDEX_RE, ROOT_INDEX_RE, UIDLIST, join
from .maildir_sync_options import SyncError

# exit codes of the remote listing script
REMOTE_MISSING = 3
REMOTE_NOT_DIR = 4


class Tree(object):
    """What one side holds, relative to its root.

    maildirs: folders (relative paths, '' for the root) with cur/ and new/.
    messages: folder -> (set of names in cur/, set of names in new/).
    uidlists: folder -> (size, mtime seconds) of dovecot-uidlist.
    index_files: folder -> names of index/cache/quota files Dovecot rebuilds.
    """

    def __init__(self, location):
        self.location = location
        self.exists = True
        self.empty = True
        self.maildirs = set()
        self.messages = {}
        self.uidlists = {}
        self.index_files = {}

    def message_count(self):
        return sum(len(c) + len(n) for c, n in self.messages.values())

    def is_maildir_root(self):
        return '' in self.maildirs


def _note_file(tree, folder, name, stat_fn):
    if name == UIDLIST:
        tree.uidlists[folder] = stat_fn()
    elif FOLDER_INDEX_RE.match(name) or ROOT_INDEX_RE.match(name):
        tree.index_files.setdefault(folder, []).append(name)


def walk_local(location, excluder):
    """The structure of a local tree (os.scandir): Maildirs, control and index files; no messages."""
    tree = Tree(location)
    root = location.path
    if not os.path.lexists(root):
        tree.exists = False
        return tree
    if not os.path.isdir(root):
        raise SyncError('%s: %s is not a directory; nothing was changed' % (location.option, root))
    stack = ['']
    while stack:
        rel = stack.pop()
        path = os.path.join(root, rel) if rel else root
        try:
            entries = list(os.scandir(path))
        except OSError as e:
            raise SyncError('%s: cannot read %s: %s' % (location.option, path, e.strerror or e))
        if rel == '' and entries:
            tree.empty = False
        subdirs = []
        files = []
        for e in entries:
            try:
                (subdirs if e.is_dir(follow_symlinks=False) else files).append(e.name)
            except OSError:
                files.append(e.name)
        is_md = 'cur' in subdirs and 'new' in subdirs
        if is_md:
            tree.maildirs.add(rel)
        for name in files:
            if name == UIDLIST or name.startswith('dovecot') or name == 'maildirsize':
                if excluder and excluder.match(join(rel, name), False):
                    continue
                fpath = os.path.join(path, name)
                _note_file(tree, rel, name, lambda p=fpath: _stat_key(p))
        for d in subdirs:
            if d == 'tmp' or (is_md and d in ('cur', 'new')):
                continue
            sub = join(rel, d)
            if excluder and excluder.match(sub, True):
                continue
            stack.append(sub)
    return tree


def list_local_messages(tree, excluder):
    """Fill tree.messages: cur/ and new/ of each Maildir, read with os.listdir (no stat)."""
    root = tree.location.path
    for rel in tree.maildirs:
        pair = []
        for sub in ('cur', 'new'):
            subrel = join(rel, sub)
            if excluder and excluder.match(subrel, True):
                pair.append(set())
                continue
            subpath = os.path.join(root, subrel)
            try:
                names = set(os.listdir(subpath))
            except OSError as e:
                if e.errno == errno.ENOENT:  # removed meanwhile
                    names = set()
                else:
                    raise SyncError('%s: cannot read %s: %s' % (tree.location.option, subpath, e.strerror or e))
            if names and min(names)[:1] == '.':  # rsync's temporary files; Maildir readers skip them
                names = set(n for n in names if not n.startswith('.'))
            if excluder:
                names = set(n for n in names if not excluder.match(join(subrel, n), False))
            pair.append(names)
        tree.messages[rel] = tuple(pair)
    return tree


def list_local(location, excluder):
    """The structure and the messages of a local tree."""
    tree = walk_local(location, excluder)
    return list_local_messages(tree, excluder) if tree.exists else tree


def _stat_key(path):
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_size, int(st.st_mtime))


# One find over SSH lists the remote tree: directories (d), files in cur/ or
# new/ (m, name only - no stat) and other files (f, with size and mtime).
# Directories named tmp are not entered, as rsync is told not to copy them.
LIST_SCRIPT = (
    "cd -- %(root)s 2>/dev/null || { if [ -e %(root)s ]; then exit %(not_dir)d; fi; exit %(missing)d; }; "
    "exec find . -mindepth 1 \\( -type d -name tmp -prune \\) "
    "-o -type d -printf 'd %%P\\0' "
    "-o \\( -type f \\( -path '*/cur/*' -o -path '*/new/*' \\) -printf 'm %%P\\0' \\) "
    "-o -type f -printf 'f %%s %%T@ %%P\\0'"
)


def list_script(root):
    return LIST_SCRIPT % dict(root=shlex.quote(root), not_dir=REMOTE_NOT_DIR, missing=REMOTE_MISSING)


def parse_listing(location, data, excluder):
    """Build a Tree from the NUL-separated output of LIST_SCRIPT."""
    tree = Tree(location)
    dirs = set()
    candidates = []
    files = []
    for rec in data.split('\0'):
        if not rec:
            continue
        tree.empty = False
        kind, rest = rec[:1], rec[2:]
        if kind == 'd':
            dirs.add(rest)
        elif kind == 'm':
            candidates.append(rest)
        elif kind == 'f':
            parts = rest.split(' ', 2)
            if len(parts) == 3:
                try:
                    key = (int(parts[0]), int(float(parts[1])))
                except ValueError:
                    key = None
                files.append((parts[2], key))
    excluded_dirs = set()
    if excluder:
        for d in sorted(dirs, key=lambda p: p.count('/')):
            parent = d.rsplit('/', 1)[0] if '/' in d else ''
            if parent in excluded_dirs or excluder.match(d, True):
                excluded_dirs.add(d)

    def folder_of(path):
        return path.rsplit('/', 1)[0] if '/' in path else ''

    for d in dirs:
        if d.endswith('/cur') or d == 'cur':
            md = folder_of(d)
            if join(md, 'new') in dirs and md not in excluded_dirs and (md == '' or md in dirs):
                tree.maildirs.add(md)
    for md in tree.maildirs:
        tree.messages[md] = (set(), set())
    for path in candidates:
        parent, name = path.rsplit('/', 1) if '/' in path else ('', path)
        sub = parent.rsplit('/', 1)[-1]
        md = folder_of(parent)
        if parent == sub:
            md = ''
        if sub not in ('cur', 'new') or md not in tree.maildirs or name.startswith('.') or parent in excluded_dirs:
            continue
        if excluder and excluder.match(path, False):
            continue
        tree.messages[md][0 if sub == 'cur' else 1].add(name)
    for path, key in files:
        folder = folder_of(path)
        name = path.rsplit('/', 1)[-1]
        if folder in excluded_dirs or (excluder and excluder.match(path, False)):
            continue
        if folder in tree.maildirs:
            _note_file(tree, folder, name, lambda k=key: k)
    return tree
