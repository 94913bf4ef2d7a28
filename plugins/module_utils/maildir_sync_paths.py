# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""maildir_sync's locations (``/path`` or ``[user@]host:/path``) and rsync-style exclude patterns."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re

from .maildir_sync_options import SyncError


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
