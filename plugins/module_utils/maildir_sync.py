# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Maildir-aware rsync between two hosts: all the logic of maildir_sync.

The Ansible module mailops.mailstack.maildir_sync is a thin wrapper around
``sync()``. This file is also a standalone program (standard library only,
no Ansible), so a systemd timer can run exactly the module's logic::

    python3 maildir_sync.py --config /etc/mailstack/maildir-sync.json [--check]

The JSON object holds the module's options by the same names. On success the
program prints the result as one line of JSON and exits 0; on error it prints
``maildir_sync: error: ...`` on stderr and exits 1 (2 for a bad config).

One run:

1. Read both trees: the Maildirs (directories with ``cur/`` and ``new/``),
   their message names (no stat), the Dovecot control and index files; the
   remote one with one ``find`` over SSH, the local one with os.scandir and
   os.listdir. ``tmp/`` is never read. Validation comes first: source and
   target exist, are mail trees at the same level, the peer answers - or the
   run stops before anything is touched.
2. Plan, per Maildir folder, by each message's unique base name (the file
   name before the flag separator, ``:`` by default): a target copy whose
   name differs from the source's only in its flags, or in new/ versus cur/,
   gets the source's name; further target copies of a message the source has
   are removed; messages only the target has are left alone (removed only
   with ``delete``). With ``dovecot_files=rebuild_indexes`` the
   target's index files of folders whose ``dovecot-uidlist`` is replaced, and
   the list index and quota file of mailboxes whose messages change, are
   removed for the target's Dovecot to rebuild.
   Messages never change once written, so the plan also names the messages
   to copy: those the target lacks under the source's name.
3. The target's renames and removals, then two rsync runs (``--dry-run`` in
   check mode), directly between the two hosts: the planned messages
   (``--files-from``, so rsync neither walks nor stats the messages both
   sides have), then the rest of the tree without ``cur/`` and ``new/``
   (folders, control files; with ``delete``, rsync's removals). With
   ``delete`` the target-only messages the plan found are removed last,
   once the source's mail is there. The itemized output gives the counts;
   renames and removals come from the plan, so check mode reports the counts
   of a real run.

The renames are done on the target before rsync runs, so a renamed message is
never sent again (bare rsync sends it again and leaves the old copy: two
messages).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading

# --- options -----------------------------------------------------------------

DOVECOT_MODES = ('rebuild_indexes', 'exclude_indexes', 'exclude_all', 'copy')

# name: (type, default, extra) - the module's argument_spec and the standalone
# config are both checked against this table.
OPTIONS = (
    ('src', 'str', None, dict(required=True)),
    ('dest', 'str', None, dict(required=True)),
    ('delete', 'bool', False, {}),
    ('dovecot_files', 'str', 'rebuild_indexes', dict(choices=DOVECOT_MODES)),
    ('excludes', 'list', [], dict(elements='str')),
    ('bwlimit', 'int', 0, {}),
    ('compress', 'bool', False, {}),
    ('create_dest', 'bool', False, {}),
    ('chown', 'str', None, {}),
    ('flag_separator', 'str', ':', {}),
    ('ssh_user', 'str', None, {}),
    ('ssh_port', 'int', None, {}),
    ('ssh_private_key', 'path', None, {}),
    ('ssh_options', 'list', [], dict(elements='str')),
    ('timeout', 'int', 60, {}),
    ('rsync_path', 'str', None, {}),
)
OPTION_NAMES = tuple(o[0] for o in OPTIONS)

# Files Dovecot rebuilds by itself: indexes, caches, transaction logs, the
# mailbox list index and its log, and the Maildir++ quota file.
INDEX_EXCLUDES = ('dovecot.index*', 'dovecot.list.index*', 'dovecot.mailbox.log*', 'maildirsize')
# Lock files mean nothing on another host.
LOCK_EXCLUDES = ('dovecot*.lock',)
FOLDER_INDEX_RE = re.compile(r'^dovecot\.index(\..*)?$')
ROOT_INDEX_RE = re.compile(r'^(dovecot\.list\.index(\..*)?|maildirsize)$')
UIDLIST = 'dovecot-uidlist'

MARK = '@@ '
ITEM_WIDTH = 11
CHANGE_COUNTS = ('new', 'flag_changes', 'duplicates_removed', 'updated', 'deleted', 'other_files',
                 'dirs_created', 'indexes_rebuilt')
COUNTS = CHANGE_COUNTS + ('unchanged', 'vanished', 'bytes_transferred')
# rsync exit codes
RSYNC_VANISHED = 24
RSYNC_PARTIAL = 23
# what rsync says of a file that went between the listing and the copy: a
# file of the transfer (24), or one named in --files-from (23)
_VANISHED_RE = re.compile(r'^(file has vanished: |rsync: (\[sender\] )?link_stat ".*" failed: '
                          r'No such file or directory \(2\))')
SSH_FAILED = 255
# exit codes of the remote listing script
REMOTE_MISSING = 3
REMOTE_NOT_DIR = 4


class SyncError(Exception):
    """An error with a message fit for the user; ``result`` goes into the failure."""

    def __init__(self, msg, **result):
        super(SyncError, self).__init__(msg)
        self.result = result


def argument_spec():
    """AnsibleModule argument_spec built from OPTIONS."""
    spec = {}
    for name, typ, default, extra in OPTIONS:
        d = dict(type=typ)
        if default is not None and default != []:
            d['default'] = default
        elif typ == 'list':
            d['default'] = []
        d.update(extra)
        spec[name] = d
    return spec


def _type_error(name, typ, value):
    return SyncError('%s: expected %s, got %s %r' % (name, typ, type(value).__name__, value))


def _coerce(name, typ, value):
    """The conversions the standalone config gets (AnsibleModule does its own)."""
    if value is None:
        return None
    if typ in ('str', 'path'):
        if not isinstance(value, str):
            raise _type_error(name, 'a string', value)
        return os.path.expanduser(value) if typ == 'path' else value
    if typ == 'bool':
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ('yes', 'true', 'on', '1', 'no', 'false', 'off', '0'):
            return value.lower() in ('yes', 'true', 'on', '1')
        raise _type_error(name, 'a boolean', value)
    if typ == 'int':
        if isinstance(value, bool):
            raise _type_error(name, 'an integer', value)
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.match(r'^-?\d+$', value.strip()):
            return int(value)
        raise _type_error(name, 'an integer', value)
    if typ == 'list':
        if not isinstance(value, list):
            raise _type_error(name, 'a list', value)
        for i, v in enumerate(value):
            if not isinstance(v, str):
                raise _type_error('%s[%d]' % (name, i), 'a string', v)
        return list(value)
    raise AssertionError(typ)  # pragma: no cover


def check_options(raw, coerce=True):
    """Validate and complete the options; raises SyncError naming the offending option.

    ``coerce`` converts types as AnsibleModule would (the standalone config);
    the module passes its already converted params with coerce=False.
    """
    if not isinstance(raw, dict):
        raise SyncError('the options must be a JSON object (a dict), got %s' % type(raw).__name__)
    unknown = sorted(k for k in raw if k not in OPTION_NAMES)
    if unknown:
        raise SyncError('unknown option(s) %s; valid options: %s' % (', '.join(unknown), ', '.join(OPTION_NAMES)))
    opts = {}
    for name, typ, default, extra in OPTIONS:
        value = raw.get(name)
        if coerce:
            value = _coerce(name, typ, value)
        if value is None:
            if extra.get('required'):
                raise SyncError('%s: this option is required' % name)
            value = list(default) if isinstance(default, list) else default
        if 'choices' in extra and value not in extra['choices']:
            raise SyncError('%s: %r is not one of %s' % (name, value, ', '.join(extra['choices'])))
        opts[name] = value
    for name in ('bwlimit', 'timeout'):
        if opts[name] < 0:
            raise SyncError('%s: must be 0 or more, got %d' % (name, opts[name]))
    if opts['ssh_port'] is not None and not 0 < opts['ssh_port'] < 65536:
        raise SyncError('ssh_port: %d is not a TCP port (1-65535)' % opts['ssh_port'])
    sep = opts['flag_separator']
    if len(sep) != 1 or sep in '/.,' or sep.isalnum() or sep.isspace():
        raise SyncError("flag_separator: %r must be one character other than a letter, digit, '/', '.', ',' or "
                        "space (Dovecot uses ':' unless maildir_info_separator says otherwise)" % sep)
    for i, pat in enumerate(opts['excludes']):
        where = 'excludes[%d]' % i
        if not pat.strip():
            raise SyncError('%s: empty pattern' % where)
        if '\n' in pat or '\r' in pat:
            raise SyncError('%s: %r contains a line break' % (where, pat))
        if pat[:2] in ('+ ', '- ') or pat.startswith('!'):
            raise SyncError('%s: %r - give plain rsync exclude patterns, without filter-rule prefixes' % (where, pat))
    for i, o in enumerate(opts['ssh_options']):
        if not re.match(r'^[A-Za-z][A-Za-z0-9]*(=|\s+)\S', o) or '\n' in o:
            raise SyncError('ssh_options[%d]: %r is not an ssh_config option such as StrictHostKeyChecking=yes'
                            % (i, o))
    if opts['chown'] is not None and not re.match(r'^[^:\s]*(:[^:\s]*)?$', opts['chown']):
        raise SyncError("chown: %r must be USER, USER:GROUP or :GROUP" % opts['chown'])
    for name in ('ssh_user', 'rsync_path'):
        v = opts[name]
        if v is not None and (not v.strip() or '\n' in v):
            raise SyncError('%s: %r is empty or contains a line break' % (name, v))
    if opts['ssh_user'] is not None and not re.match(r'^[A-Za-z0-9._][A-Za-z0-9._-]*$', opts['ssh_user']):
        raise SyncError('ssh_user: %r is not a user name' % opts['ssh_user'])
    return opts


# --- locations ---------------------------------------------------------------

class Location(object):
    """A local path or ``[user@]host:path`` (IPv6 hosts in brackets)."""

    def __init__(self, option, path, host=None, user=None):
        self.option = option
        self.path = path
        self.host = host
        self.user = user

    @property
    def remote(self):
        return self.host is not None

    def where(self):
        """For messages: the path and, when remote, the host."""
        if self.remote:
            return '%s on %s' % (self.path, self.host)
        return self.path

    def rsync_arg(self, trailing_slash=False):
        path = self.path.rstrip('/') or '/'
        if trailing_slash and not path.endswith('/'):
            path += '/'
        if not self.remote:
            return path
        host = '[%s]' % self.host if ':' in self.host else self.host
        return '%s%s:%s' % (self.user + '@' if self.user else '', host, path)


_REMOTE_RE = re.compile(r'^(?:(?P<user>[^@/:\s]+)@)?(?:\[(?P<v6>[0-9A-Fa-f:.%]+)\]|(?P<host>[^@/:\[\]\s]+)):(?P<path>.*)$')


def parse_location(option, value, ssh_user=None):
    if not value or not value.strip():
        raise SyncError('%s: empty' % option)
    if value.startswith('rsync://') or re.match(r'^[^/\[\]]*::', value):
        raise SyncError('%s: %r - rsync daemon addresses are not supported; give a path or [user@]host:path '
                        '(the module runs rsync over SSH)' % (option, value))
    m = None
    if not value.startswith('/') and ':' in value.split('/', 1)[0] or value.startswith('['):
        m = _REMOTE_RE.match(value)
        if not m:
            raise SyncError('%s: %r is neither a local path nor [user@]host:path' % (option, value))
    if m is None:
        path = os.path.abspath(os.path.expanduser(value))
        return Location(option, path)
    host = m.group('v6') or m.group('host')
    user = m.group('user')
    path = m.group('path')
    if host.startswith('-'):
        raise SyncError('%s: %r - a host name cannot start with "-"' % (option, value))
    if not path.startswith('/'):
        raise SyncError('%s: %r - the remote path must be absolute' % (option, value))
    if user and ssh_user and user != ssh_user:
        raise SyncError('%s: %r names the user %r but ssh_user is %r; give the user once'
                        % (option, value, user, ssh_user))
    path = os.path.normpath(path)
    return Location(option, path, host=host, user=user or ssh_user)


# --- rsync-style exclude patterns ----------------------------------------------

def _glob_to_regex(pat):
    out = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if c == '*':
            if pat[i:i + 2] == '**':
                out.append('.*')
                while i < n and pat[i] == '*':
                    i += 1
                continue
            out.append('[^/]*')
        elif c == '?':
            out.append('[^/]')
        elif c == '[':
            j = pat.find(']', i + 2 if pat[i + 1:i + 2] in ('!', '^', ']') else i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pat[i + 1:j]
                if body[:1] in ('!', '^'):
                    body = '^' + body[1:]
                out.append('[%s]' % body.replace('\\', '\\\\'))
                i = j
        elif c == '\\' and i + 1 < n:
            i += 1
            out.append(re.escape(pat[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return ''.join(out)


class Excluder(object):
    """rsync's matching of --exclude patterns, for the listing.

    ``*`` within a name, ``**`` across ``/``, ``?``, ``[...]``; a leading ``/``
    anchors at the top of the transfer; a trailing ``/`` matches directories
    only; a pattern with a ``/`` or ``**`` matches the end of the path,
    otherwise the name. ``dir/***`` matches the directory and what it holds.
    Whatever lies under an excluded directory is excluded too.
    """

    def __init__(self, patterns):
        self.rules = []
        for pat in patterns:
            dir_only = False
            also_dir = False
            if pat.endswith('/***'):
                pat = pat[:-4]
                also_dir = True
            elif pat.endswith('/') and len(pat) > 1:
                pat = pat.rstrip('/')
                dir_only = True
            anchored = pat.startswith('/')
            if anchored:
                pat = pat.lstrip('/')
            body = _glob_to_regex(pat)
            if anchored:
                rx = '^' + body + '$'
                whole = True
            elif '/' in pat or '**' in pat:
                rx = '(?:^|/)' + body + '$'
                whole = True
            else:
                rx = '^' + body + '$'
                whole = False
            self.rules.append((re.compile(rx, re.S), whole, dir_only, also_dir))

    def __bool__(self):
        return bool(self.rules)

    __nonzero__ = __bool__

    def match(self, relpath, is_dir):
        """True if the path itself matches a rule (ancestors are the caller's business)."""
        name = relpath.rsplit('/', 1)[-1]
        for rx, whole, dir_only, also_dir in self.rules:
            if dir_only and not is_dir:
                continue
            if rx.search(relpath if whole else name):
                return True
        return False


# --- listing ------------------------------------------------------------------

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


def _join(rel, name):
    return rel + '/' + name if rel else name


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
                if excluder and excluder.match(_join(rel, name), False):
                    continue
                fpath = os.path.join(path, name)
                _note_file(tree, rel, name, lambda p=fpath: _stat_key(p))
        for d in subdirs:
            if d == 'tmp' or (is_md and d in ('cur', 'new')):
                continue
            sub = _join(rel, d)
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
            subrel = _join(rel, sub)
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
                names = set(n for n in names if not excluder.match(_join(subrel, n), False))
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
            if _join(md, 'new') in dirs and md not in excluded_dirs and (md == '' or md in dirs):
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


# --- plan ----------------------------------------------------------------------

def base_name(name, sep):
    """'cur/1700000000.M1P2.host,S=10:2,RS' -> '1700000000.M1P2.host,S=10'."""
    return name[4:].split(sep, 1)[0]


def _top_maildir(folder, maildirs):
    """The mailbox a folder belongs to: the outermost of the Maildirs nested around it."""
    top = folder
    while top:
        parent = top.rsplit('/', 1)[0] if '/' in top else ''
        if parent not in maildirs:
            break
        top = parent
    return top


class Plan(object):
    """What is changed on the target besides rsync's copy (paths relative to its root)."""

    def __init__(self):
        self.renames = []         # (old, new): a stale-flag copy gets the source's name
        self.duplicates = []      # extra target copies of a message the source has
        self.index_removals = []  # target index files Dovecot is to rebuild (rebuild_indexes)
        self.copies = []          # source messages the target lacks: rsync copies exactly these
        self.new_dirs = []        # cur/ and new/ of folders the target lacks (made even when empty)
        self.deletions = []       # target-only messages, removed after the copy (delete=true)
        self._removal_set = set()
        self.touched = set()      # folders whose messages change
        self.uidlist_changed = set()  # folders whose dovecot-uidlist is replaced

    @property
    def target_changes(self):
        """Whether anything is renamed or removed on the target before the copy."""
        return bool(self.renames or self.duplicates or self.index_removals)

    def remove_index(self, folder, names, pattern):
        for n in sorted(names):
            path = _join(folder, n)
            if pattern.match(n) and path not in self._removal_set:
                self.index_removals.append(path)
                self._removal_set.add(path)


def plan_uidlists(plan, src, dst, opts):
    """Folders whose dovecot-uidlist is replaced; with rebuild_indexes, their index files go first.

    A replaced dovecot-uidlist may give UIDs that the target's index and cache hold for other
    messages (mail delivered to the target during a failover): the target's Dovecot must rebuild
    that folder's index, and the list index of its mailbox, from the Maildir and the new uidlist.
    """
    if opts['dovecot_files'] == 'exclude_all':
        return plan
    for folder, key in src.uidlists.items():
        if folder in dst.maildirs and dst.uidlists.get(folder) != key:
            plan.uidlist_changed.add(folder)
    if opts['dovecot_files'] == 'rebuild_indexes':
        for folder in sorted(plan.uidlist_changed):
            plan.remove_index(folder, dst.index_files.get(folder, ()), FOLDER_INDEX_RE)
            top = _top_maildir(folder, dst.maildirs)
            plan.remove_index(top, dst.index_files.get(top, ()), ROOT_INDEX_RE)
    return plan


def _prefixed(folder, cur, new):
    p = folder + '/' if folder else ''
    return sorted([p + 'cur/' + n for n in cur] + [p + 'new/' + n for n in new])


def plan_messages(plan, src, dst, opts):
    """Compare the two listings folder by folder; only the differences are looked at by name.

    Messages never change once written (Maildir): a name the target has is the same message, so
    the copy is planned here, from the names, and rsync copies exactly the planned files.
    """
    sep = opts['flag_separator']
    empty = (frozenset(), frozenset())
    for folder in sorted(src.messages):
        s_cur, s_new = src.messages[folder]
        t_cur, t_new = dst.messages.get(folder, empty)
        if folder not in dst.maildirs:
            plan.new_dirs += [_join(folder, 'cur'), _join(folder, 'new')]
        os_cur, os_new = s_cur - t_cur, s_new - t_new
        ot_cur, ot_new = t_cur - s_cur, t_new - s_new
        if not (os_cur or os_new or ot_cur or ot_new):
            continue
        copies = _prefixed(folder, os_cur, os_new)
        if not (ot_cur or ot_new):
            plan.copies += copies
            plan.touched.add(folder)
            continue
        before = (len(plan.duplicates), len(plan.deletions))
        skip = len(folder) + 1 if folder else 0
        s_by_base = {}
        for n in copies:
            s_by_base.setdefault(base_name(n[skip:], sep), []).append(n)
        t_by_base = {}
        for n in _prefixed(folder, ot_cur, ot_new):  # cur/ first: the copy Dovecot has seen is renamed
            t_by_base.setdefault(base_name(n[skip:], sep), []).append(n)
        renamed_to = set()
        all_s_bases = None
        for b, ts in sorted(t_by_base.items()):
            if b in s_by_base:
                new = s_by_base[b][0]
                plan.renames.append((ts[0], new))
                renamed_to.add(new)
                plan.duplicates.extend(ts[1:])
                continue
            if all_s_bases is None:
                all_s_bases = set(n.split(sep, 1)[0] for n in s_cur)
                all_s_bases.update(n.split(sep, 1)[0] for n in s_new)
            if b in all_s_bases:
                plan.duplicates.extend(ts)
            elif opts['delete']:
                plan.deletions.extend(ts)
        copies = [n for n in copies if n not in renamed_to]
        plan.copies += copies
        if copies or (len(plan.duplicates), len(plan.deletions)) != before:
            plan.touched.add(folder)  # not for renames alone: the message count stays
    if opts['delete']:
        # Maildirs the source no longer has: their messages go (rsync removes the rest)
        for folder in sorted(set(dst.messages) - set(src.messages)):
            t_cur, t_new = dst.messages[folder]
            if t_cur or t_new:
                plan.touched.add(folder)
                plan.deletions += _prefixed(folder, t_cur, t_new)
    if opts['dovecot_files'] == 'rebuild_indexes':
        # changed messages make the mailbox's Maildir++ quota file and list index stale
        for top in sorted(set(_top_maildir(f, dst.maildirs) for f in plan.touched if f in dst.maildirs)):
            plan.remove_index(top, dst.index_files.get(top, ()), ROOT_INDEX_RE)
    return plan


def make_plan(src, dst, opts):
    return plan_messages(plan_uidlists(Plan(), src, dst, opts), src, dst, opts)


# --- running commands ----------------------------------------------------------

def default_runner(argv, data=None):
    """Run argv; returns (rc, stdout, stderr) as text (undecodable bytes kept as surrogates)."""
    env = dict(os.environ, LC_ALL='C', LANG='C')
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except OSError as e:
        raise SyncError('cannot run %s: %s' % (argv[0], e.strerror or e))
    out, err = proc.communicate(data.encode('utf-8', 'surrogateescape') if data is not None else None)
    return (proc.returncode, out.decode('utf-8', 'surrogateescape'), err.decode('utf-8', 'surrogateescape'))


def _unlink(path):
    try:
        os.unlink(path)
    except (IOError, OSError) as e:
        if e.errno != errno.ENOENT:
            raise


def remove_trash(paths):
    for p in paths:
        try:
            os.unlink(p)
        except (IOError, OSError):
            pass


def _tail(text, n=1500):
    text = (text or '').strip()
    return text if len(text) <= n else '...' + text[-n:]


def _quote_cmd(argv):
    return ' '.join(shlex.quote(a) for a in argv)


class MaildirSync(object):
    """One sync run. ``runner`` and ``which`` are replaced in unit tests."""

    def __init__(self, options, check_mode=False, runner=None, which=None, coerce=True):
        self.opts = check_options(options, coerce=coerce)
        self.check_mode = check_mode
        self.runner = runner or default_runner
        self.which = which or shutil.which
        self.warnings = []
        o = self.opts
        self.src = parse_location('src', o['src'], o['ssh_user'])
        self.dest = parse_location('dest', o['dest'], o['ssh_user'])
        if self.src.remote and self.dest.remote:
            raise SyncError('src and dest are both remote (%s, %s): run the module on one of the two hosts '
                            '(delegate_to) so that rsync goes directly between them'
                            % (self.src.host, self.dest.host))
        if not self.src.remote and not self.dest.remote:
            s, d = self.src.path.rstrip('/'), self.dest.path.rstrip('/')
            if s == d or d.startswith(s + '/') or s.startswith(d + '/'):
                raise SyncError('src %s and dest %s overlap; they must be separate trees' % (s, d))
        self.peer = self.src if self.src.remote else (self.dest if self.dest.remote else None)
        self.direction = 'pull' if self.src.remote else ('push' if self.dest.remote else 'local')
        self.excluder = Excluder(o['excludes'])

    # ssh

    def ssh_base(self):
        """ssh argv without the host: used for our own calls and, quoted, as rsync's -e."""
        o = self.opts
        ssh = self.which('ssh')
        if not ssh:
            raise SyncError('ssh is not installed on this host (Debian: openssh-client); it is needed to reach %s'
                            % self.peer.host)
        argv = [ssh, '-o', 'BatchMode=yes']
        if o['timeout']:
            argv += ['-o', 'ConnectTimeout=%d' % o['timeout']]
        if o['ssh_port']:
            argv += ['-p', str(o['ssh_port'])]
        if o['ssh_private_key']:
            argv += ['-i', o['ssh_private_key']]
        for opt in o['ssh_options']:
            argv += ['-o', opt]
        return argv

    def ssh_argv(self, command):
        argv = self.ssh_base()
        if self.peer.user:
            argv += ['-l', self.peer.user]
        return argv + [self.peer.host, command]

    def peer_desc(self):
        p = self.peer
        desc = '%s%s' % (p.user + '@' if p.user else '', p.host)
        if self.opts['ssh_port']:
            desc += ' port %d' % self.opts['ssh_port']
        return desc

    # listing

    def list_tree(self, loc):
        if not loc.remote:
            return list_local(loc, self.excluder)
        argv = self.ssh_argv('sh -c %s' % shlex.quote(list_script(loc.path)))
        rc, out, err = self.runner(argv)
        if rc == SSH_FAILED:
            raise SyncError('cannot reach %s over SSH: %s; nothing was changed' % (self.peer_desc(), _tail(err)),
                            rc=rc)
        tree = None
        if rc == REMOTE_MISSING:
            tree = Tree(loc)
            tree.exists = False
        elif rc == REMOTE_NOT_DIR:
            raise SyncError('%s: %s is not a directory; nothing was changed' % (loc.option, loc.where()), rc=rc)
        elif rc != 0:
            raise SyncError('%s: cannot list %s (rc %d): %s; nothing was changed'
                            % (loc.option, loc.where(), rc, _tail(err)), rc=rc)
        return tree or parse_listing(loc, out, self.excluder)

    def nothing_to_copy(self, src, dst):
        """An empty source directory (a new server: no mailbox yet) and no delete: nothing to do.

        The target is still checked, so that a wrong dest is reported on the first run.
        """
        if dst.exists and not dst.empty and not dst.maildirs:
            self.validate(_placeholder_tree(src), dst)
        self.warnings.append('src: %s is empty (no mailbox yet); nothing to copy' % self.src.where())
        result = dict((k, 0) for k in COUNTS)
        result.update(changed=False, direction=self.direction, rc=0, cmd='', check_mode=self.check_mode,
                      messages_source=0, maildirs_source=0, warnings=list(self.warnings))
        return result

    def validate(self, src, dst):
        if not src.exists:
            raise SyncError('src: %s does not exist; nothing was changed' % self.src.where())
        if not src.maildirs:
            raise SyncError('src: %s is not a Maildir and contains no Maildir (no directory with both cur/ and new/)'
                            '; nothing was changed' % self.src.where())
        if not dst.exists or dst.empty:
            if not self.opts['create_dest']:
                what = 'does not exist' if not dst.exists else 'is empty'
                raise SyncError('dest: %s %s; set create_dest=true for a first copy into a new or empty '
                                'directory; nothing was changed' % (self.dest.where(), what))
            return
        if not dst.maildirs:
            raise SyncError('dest: %s is not a Maildir and contains no Maildir (no directory with both cur/ and new/)'
                            '; refusing to sync mail into it; nothing was changed' % self.dest.where())
        if src.is_maildir_root() != dst.is_maildir_root():
            s_kind = 'a Maildir' if src.is_maildir_root() else 'a directory of Maildirs'
            d_kind = 'a Maildir' if dst.is_maildir_root() else 'a directory of Maildirs'
            raise SyncError('src %s is %s but dest %s is %s: point both at the same level; nothing was changed'
                            % (self.src.where(), s_kind, self.dest.where(), d_kind))

    # target changes

    def apply_local(self, renames=(), duplicates=(), removals=()):
        """Renames and removals on a local target; returns the parked files for remove_trash().

        Index files to remove are parked in their Maildir's tmp/ (one rename each: rsync never
        looks into tmp/, Dovecot never reads it) and unlinked while rsync runs - an unlink costs
        a hundred times a rename. Should that be interrupted, Dovecot deletes old files in tmp/
        by itself.
        """
        if self.check_mode:
            return []
        root = self.dest.path
        try:
            for old, new in renames:
                try:
                    os.rename(os.path.join(root, old), os.path.join(root, new))
                except (IOError, OSError) as e:
                    if e.errno != errno.ENOENT:
                        raise
                    self.warnings.append('%s disappeared from the target before it could be renamed' % old)
            for rel in duplicates:
                _unlink(os.path.join(root, rel))
            return self._park(removals)
        except (IOError, OSError) as e:
            raise SyncError('dest: cannot rename or remove %s: %s' % (e.filename, e.strerror or e))

    def _park(self, paths):
        root = self.dest.path
        parked = []
        for rel in paths:
            folder, name = rel.rsplit('/', 1) if '/' in rel else ('', rel)
            tmpdir = os.path.join(root, folder, 'tmp')
            path = os.path.join(root, rel)
            if os.path.isdir(tmpdir):
                target = os.path.join(tmpdir, '%s.maildir-sync.%d' % (name, os.getpid()))
                try:
                    os.rename(path, target)
                    parked.append(target)
                except (IOError, OSError) as e:
                    if e.errno != errno.ENOENT:
                        raise
            else:
                _unlink(path)
        return parked

    def apply_remote(self, renames, removals):
        """Renames, then removals, on a remote target: one `sh -s` over SSH."""
        if self.check_mode or not (renames or removals):
            return
        q = shlex.quote
        lines = ['set -e', 'cd -- %s' % q(self.dest.path),
                 'r() { if [ -f "$1" ]; then mv -f -- "$1" "$2"; else echo "gone: $1"; fi; }']
        lines += ['r %s %s' % (q(old), q(new)) for old, new in renames]
        for i in range(0, len(removals), 200):
            lines.append('rm -f -- ' + ' '.join(q(rel) for rel in removals[i:i + 200]))
        rc, out, err = self.runner(self.ssh_argv('sh -s'), '\n'.join(lines) + '\n')
        if rc == SSH_FAILED:
            raise SyncError('cannot reach %s over SSH: %s' % (self.peer_desc(), _tail(err)), rc=rc)
        if rc != 0:
            raise SyncError('dest: renaming or removing files on %s failed (rc %d): %s'
                            % (self.peer_desc(), rc, _tail(err)), rc=rc)
        for line in out.splitlines():
            if line.startswith('gone: '):
                self.warnings.append('%s disappeared from the target before it could be renamed' % line[6:])

    # rsync

    def excludes(self):
        mode = self.opts['dovecot_files']
        pats = ['tmp/*']
        pats += list(LOCK_EXCLUDES)
        if mode in ('rebuild_indexes', 'exclude_indexes'):
            pats += list(INDEX_EXCLUDES)
        elif mode == 'exclude_all':
            pats += ['dovecot*'] + [p for p in INDEX_EXCLUDES if not p.startswith('dovecot')]
        return pats + list(self.opts['excludes'])

    def _rsync_common(self, dest_missing):
        o = self.opts
        rsync = self.which('rsync')
        if not rsync:
            raise SyncError('rsync is not installed on this host (Debian: rsync)')
        argv = [rsync, '--archive', '--omit-dir-times', '--numeric-ids', '--8-bit-output', '--no-human-readable',
                '--out-format=' + MARK + '%i %l %n']
        if self.check_mode:
            argv.append('--dry-run')
        if o['timeout']:
            argv.append('--timeout=%d' % o['timeout'])
        if o['bwlimit']:
            argv.append('--bwlimit=%d' % o['bwlimit'])
        if o['compress']:
            argv.append('--compress')
        if o['chown']:
            argv.append('--chown=%s' % o['chown'])
        if dest_missing:
            argv.append('--mkpath')
        if self.peer is not None:
            argv += ['--rsh', _quote_cmd(self.ssh_base())]
            if o['rsync_path']:
                argv.append('--rsync-path=%s' % o['rsync_path'])
        return argv

    def rsync_argv(self, dest_missing=False):
        """The tree without the messages: folders, tmp/ (empty), control files; with delete, removals."""
        argv = self._rsync_common(dest_missing)
        if self.opts['delete']:
            argv.append('--delete-delay')
        argv += ['--exclude=%s' % p for p in self.excludes() + ['cur/', 'new/']]
        return argv + [self.src.rsync_arg(trailing_slash=True), self.dest.rsync_arg()]

    def messages_argv(self, dest_missing=False):
        """The planned messages (and cur/, new/ of new folders), named on stdin, NUL-separated."""
        argv = self._rsync_common(dest_missing) + ['--from0', '--files-from=-']
        return argv + [self.src.rsync_arg(trailing_slash=True), self.dest.rsync_arg()]

    def run_rsync(self, argv, data=None):
        rc, out, err = self.runner(argv, data) if data is not None else self.runner(argv)
        ok = rc == RSYNC_VANISHED
        gone = sum(1 for line in err.splitlines() if _VANISHED_RE.match(line))
        if rc == RSYNC_PARTIAL:
            # a success only when every error is a source file gone since the listing
            ok = gone > 0 and not [line for line in err.splitlines()
                                   if line.startswith('rsync: ') and not _VANISHED_RE.match(line)]
        if ok:
            self.warnings.append('%d source file(s) vanished during the transfer (renamed or expunged on the '
                                 'source meanwhile); the next run picks up their new names' % gone)
            return rc, out, gone
        if rc != 0:
            reach = ''
            if self.peer is not None and (rc in (SSH_FAILED, 12, 30, 35) or 'ssh:' in err):
                reach = ' (SSH to %s)' % self.peer_desc()
            raise SyncError('rsync failed with rc %d%s: %s' % (rc, reach, _tail(err)), rc=rc, cmd=_quote_cmd(argv),
                            stdout_lines=out.splitlines()[-50:])
        return rc, out, 0

    # the run

    def run(self):
        """List both sides (at the same time when one is remote), validate, settle renames and
        removals on the target, then rsync."""
        if self.peer is None:
            job = Background(list_local, self.dest, self.excluder)  # listdir lets the other thread run
            src = list_local(self.src, self.excluder)
            dst = job.result()
        else:
            remote, local = (self.src, self.dest) if self.src.remote else (self.dest, self.src)
            job = Background(self.list_tree, remote)
            local_error = None
            try:
                local_tree = list_local(local, self.excluder)
            except SyncError as e:
                local_error = e
            remote_tree = job.result()  # an unreachable peer is the first thing to report
            if local_error is not None:
                raise local_error
            src, dst = (remote_tree, local_tree) if self.src.remote else (local_tree, remote_tree)
        if src.exists and src.empty and not self.opts['delete']:
            return self.nothing_to_copy(src, dst)
        self.validate(src, dst)
        plan = make_plan(src, dst, self.opts)
        dest_missing = not dst.exists
        structure_argv = self.rsync_argv(dest_missing)
        messages_argv = self.messages_argv(dest_missing) if plan.copies or plan.new_dirs else None
        # 1. stale copies get the source's names, so they are not copied again
        cleaner = None
        if self.dest.remote:
            self.apply_remote(plan.renames, plan.duplicates + plan.index_removals)
        else:
            trash = self.apply_local(plan.renames, plan.duplicates, plan.index_removals)
            cleaner = Background(remove_trash, trash) if trash else None
        try:
            # 2. the messages the target lacks, then the rest of the tree (dovecot-uidlist after
            # the messages it lists)
            out, vanished, cmds, rc_max = '', 0, [], 0
            for argv, data in ((messages_argv, plan.new_dirs + plan.copies), (structure_argv, None)):
                if argv is None:
                    continue
                cmds.append(_quote_cmd(argv))
                rc, o, v = self._rsync(argv, plan, data='\0'.join(data) + '\0' if data else None)
                out += o
                vanished += v
                rc_max = max(rc_max, rc)
        finally:
            if cleaner is not None:
                cleaner.result()
        # 3. with delete: target-only messages, once the source's mail is there
        if plan.deletions:
            if self.dest.remote:
                self.apply_remote((), plan.deletions)
            elif not self.check_mode:
                try:
                    for rel in plan.deletions:
                        _unlink(os.path.join(self.dest.path, rel))
                except (IOError, OSError) as e:
                    raise SyncError('dest: cannot remove %s: %s' % (e.filename, e.strerror or e))
        return self.result(' && '.join(cmds), rc_max, parse_items(out), vanished, plan, src, dst)

    def _rsync(self, argv, plan, data=None):
        try:
            return self.run_rsync(argv, data)
        except SyncError as e:
            self._annotate(e, plan)
            raise

    def _annotate(self, e, plan):
        done = not self.check_mode and plan.target_changes
        e.result['changed'] = done
        if done:
            e.args = ('%s (before rsync ran, %d stale target copies were renamed or removed and %d index '
                      'files removed)' % (e.args[0], len(plan.renames) + len(plan.duplicates),
                                          len(plan.index_removals)),)

    def result(self, cmd, rc, items, vanished, plan, src, dst):
        counts = count_items(items, src, dst)
        counts['vanished'] = vanished
        counts['flag_changes'] = len(plan.renames)
        counts['duplicates_removed'] = len(plan.duplicates)
        counts['deleted'] = len(plan.deletions)
        counts['indexes_rebuilt'] = len(plan.index_removals)
        total = src.message_count()
        counts['unchanged'] = max(0, total - counts['new'] - counts['updated'] - len(plan.renames))
        result = dict((k, counts[k]) for k in COUNTS)
        result['changed'] = any(result[k] for k in CHANGE_COUNTS)
        result.update(direction=self.direction, rc=rc, cmd=cmd, check_mode=self.check_mode,
                      messages_source=total, maildirs_source=len(src.maildirs))
        if self.warnings:
            result['warnings'] = list(self.warnings)
        return result


def _placeholder_tree(src):
    """A source tree with one root Maildir, to run the target's checks against."""
    tree = Tree(src.location)
    tree.empty = False
    tree.maildirs.add('')
    return tree


class Background(object):
    """fn(*args) in a thread; result() waits and returns its value or raises its exception."""

    def __init__(self, fn, *args):
        self._value = None
        self._error = None
        self._thread = threading.Thread(target=self._run, args=(fn, args))
        self._thread.daemon = True
        self._thread.start()

    def _run(self, fn, args):
        try:
            self._value = fn(*args)
        except BaseException as e:  # pylint: disable=broad-except
            self._error = e

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def sync(options, check_mode=False, runner=None, which=None, coerce=True):
    """Run one sync; returns the result dict or raises SyncError."""
    return MaildirSync(options, check_mode=check_mode, runner=runner, which=which, coerce=coerce).run()


# --- rsync output ----------------------------------------------------------------

_ESCAPE_RE = re.compile(r'\\#([0-7]{3})')


def parse_items(out):
    """(itemize, size, name) for each --out-format line; other output is ignored."""
    items = []
    for line in out.splitlines():
        if not line.startswith(MARK):
            continue
        line = line[len(MARK):]
        flags = line[:ITEM_WIDTH]
        rest = line[ITEM_WIDTH + 1:]
        size, name = rest.split(' ', 1) if ' ' in rest else (rest, '')
        try:
            size = int(size)
        except ValueError:
            continue
        if '\\#' in name:
            name = _ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 8)), name)
        items.append((flags.rstrip(), size, name))
    return items


def is_message(path, maildirs):
    parts = path.rsplit('/', 2)
    if len(parts) == 2:
        return parts[0] in ('cur', 'new') and '' in maildirs
    if len(parts) == 3:
        return parts[1] in ('cur', 'new') and parts[0] in maildirs and parts[2] != ''
    return False


def count_items(items, src, dst):
    """Counts from the itemized output of the runs; a name seen twice (a new directory, in both
    dry runs) counts once."""
    counts = dict((k, 0) for k in COUNTS)
    maildirs = src.maildirs | dst.maildirs
    seen = set()
    for flags, size, name in items:
        if name in seen:
            continue
        seen.add(name)
        if flags.startswith('*'):
            if 'deleting' in flags:
                if name.endswith('/'):
                    counts['other_files'] += 1
                elif is_message(name, maildirs):
                    counts['deleted'] += 1
                else:
                    counts['other_files'] += 1
            continue
        kind = flags[1:2]
        new = flags[2:] == '+' * (ITEM_WIDTH - 2)
        if kind == 'd':
            if new:
                counts['dirs_created'] += 1
            else:
                counts['other_files'] += 1
            continue
        transferred = flags[:1] in ('<', '>')
        if transferred and kind == 'f':
            counts['bytes_transferred'] += size
        if kind == 'f' and is_message(name, maildirs):
            counts['new' if new else 'updated'] += 1
        else:
            counts['other_files'] += 1
    return counts


# --- standalone program -----------------------------------------------------------

def _say(stream, text):
    stream.write(text + '\n')
    stream.flush()


def main(argv=None):
    """The program a systemd timer runs; returns the exit code."""
    import argparse
    ap = argparse.ArgumentParser(
        prog='maildir_sync.py',
        description='rsync of Maildir trees that never loses mail (the logic of mailops.mailstack.maildir_sync).')
    ap.add_argument('--config', required=True, help='JSON file with the module options (src, dest, ...)')
    ap.add_argument('--check', action='store_true', help='dry run: report what would change, change nothing')
    args = ap.parse_args(argv)
    try:
        with open(args.config) as f:
            options = json.load(f)
    except (IOError, OSError) as e:
        _say(sys.stderr, 'maildir_sync: error: cannot read %s: %s' % (args.config, e.strerror or e))
        return 2
    except ValueError as e:
        _say(sys.stderr, 'maildir_sync: error: %s is not valid JSON: %s' % (args.config, e))
        return 2
    try:
        run = MaildirSync(options, check_mode=args.check)
    except SyncError as e:
        _say(sys.stderr, 'maildir_sync: error: %s: %s' % (args.config, e))
        return 2
    try:
        result = run.run()
    except SyncError as e:
        _say(sys.stderr, 'maildir_sync: error: %s' % e)
        return 1
    for w in result.get('warnings', ()):
        _say(sys.stderr, 'maildir_sync: warning: %s' % w)
    _say(sys.stdout, json.dumps(result, sort_keys=True))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
