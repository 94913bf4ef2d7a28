# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""maildir_sync's runner: the rsync and ssh command lines, running them, reading rsync's itemized output."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
import shlex
import subprocess

from .maildir_sync_maildir import INDEX_EXCLUDES, LOCK_EXCLUDES, is_message
from .maildir_sync_options import SyncError

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


def tail(text, n=1500):
    text = (text or '').strip()
    return text if len(text) <= n else '...' + text[-n:]


def quote_cmd(argv):
    return ' '.join(shlex.quote(a) for a in argv)


class Commands(object):
    """The ssh and rsync command lines of a run, and running rsync; a part of MaildirSync.

    Uses the run's opts, check_mode, runner, which, warnings, src, dest and peer.
    """

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
            argv += ['--rsh', quote_cmd(self.ssh_base())]
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
            raise SyncError('rsync failed with rc %d%s: %s' % (rc, reach, tail(err)), rc=rc, cmd=quote_cmd(argv),
                            stdout_lines=out.splitlines()[-50:])
        return rc, out, 0


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
