# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Maildir-aware rsync between two hosts: one run of maildir_sync (``sync()``, ``MaildirSync``).

The Ansible module mailops.mailstack.maildir_sync and the standalone program
(maildir_sync.py, which the backup MX's timer runs) both call ``sync()``.
The parts: maildir_sync_options (options, SyncError), maildir_sync_paths
(locations, exclude patterns), maildir_sync_maildir (Maildir names and flags),
maildir_sync_listing (reading a tree), maildir_sync_plan (the comparison),
maildir_sync_rsync (ssh and rsync command lines, rsync's output). All use the
standard library only.

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
import os
import shlex
import shutil
import threading

from .maildir_sync_listing import REMOTE_MISSING, REMOTE_NOT_DIR, Tree, list_local, list_script, parse_listing
from .maildir_sync_options import SyncError, check_options
from .maildir_sync_paths import Excluder, parse_location
from .maildir_sync_plan import make_plan
from .maildir_sync_rsync import (CHANGE_COUNTS, COUNTS, SSH_FAILED, Commands, count_items, default_runner,
                                 parse_items, quote_cmd, tail)


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


class MaildirSync(Commands):
    """One sync run. ``runner`` and ``which`` are replaced in unit tests.

    ``options`` are typed (AnsibleModule's params, or the standalone program's config as read by
    maildir_sync.py); missing ones get their defaults.
    """

    def __init__(self, options, check_mode=False, runner=None, which=None):
        self.opts = check_options(options)
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

    # listing

    def list_tree(self, loc):
        if not loc.remote:
            return list_local(loc, self.excluder)
        argv = self.ssh_argv('sh -c %s' % shlex.quote(list_script(loc.path)))
        rc, out, err = self.runner(argv)
        if rc == SSH_FAILED:
            raise SyncError('cannot reach %s over SSH: %s; nothing was changed' % (self.peer_desc(), tail(err)),
                            rc=rc)
        tree = None
        if rc == REMOTE_MISSING:
            tree = Tree(loc)
            tree.exists = False
        elif rc == REMOTE_NOT_DIR:
            raise SyncError('%s: %s is not a directory; nothing was changed' % (loc.option, loc.where()), rc=rc)
        elif rc != 0:
            raise SyncError('%s: cannot list %s (rc %d): %s; nothing was changed'
                            % (loc.option, loc.where(), rc, tail(err)), rc=rc)
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
            raise SyncError('cannot reach %s over SSH: %s' % (self.peer_desc(), tail(err)), rc=rc)
        if rc != 0:
            raise SyncError('dest: renaming or removing files on %s failed (rc %d): %s'
                            % (self.peer_desc(), rc, tail(err)), rc=rc)
        for line in out.splitlines():
            if line.startswith('gone: '):
                self.warnings.append('%s disappeared from the target before it could be renamed' % line[6:])

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
                cmds.append(quote_cmd(argv))
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


def sync(options, check_mode=False, runner=None, which=None):
    """Run one sync; returns the result dict or raises SyncError."""
    return MaildirSync(options, check_mode=check_mode, runner=runner, which=which).run()
