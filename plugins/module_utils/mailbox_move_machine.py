# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The state machine of mailbox_move (its documentation says why each step
is safe). States, recorded in mailbox_move before each step acts:

    (none) -> copying -> held -> done -> (none: cleanup on the source)
    copying --abort--> (none)          the target's copy removed
    held    --abort--> copying --> (none)   flipped back, synced, then as above

It talks to three things it is given: db (module_utils/mailbox_move_db.py),
dovecot (module_utils/mailbox_move_dovecot.py) and fs (copy_path and
remove_copy of module_utils/mailbox_move_fs.py), so the unit tests run it
against fakes."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import time

from ansible_collections.mailops.mailstack.plugins.module_utils.doveadm import DoveadmError
from ansible_collections.mailops.mailstack.plugins.module_utils.mailbox_move_dovecot import DsyncError
from ansible_collections.mailops.mailstack.plugins.module_utils.replica_wait import ReplicaLagError


class MoveError(Exception):
    pass


class Mover(object):
    def __init__(self, email, params, db, dovecot, fs, is_local, owner, owner_alive=lambda owner: True,
                 check_mode=False, clock=time.time, sleep=time.sleep, replicas=lambda: []):
        self.email = email.strip().lower()
        self.p = params
        self.db, self.dovecot, self.fs = db, dovecot, fs
        self.is_local = is_local
        self.owner, self.owner_alive = owner, owner_alive
        self.check_mode = check_mode
        self.clock, self.sleep = clock, sleep
        # Waits until every replica the readers use has applied the last
        # commit of this run (module_utils/replica_wait.py): its warnings,
        # or ReplicaLagError.
        self.replicas = replicas
        self.locked = False
        self.warnings = []
        self.started = clock()

    # -- what the database says ----------------------------------------------
    def load(self):
        row = self.db.mailbox(self.email)
        if row is None:
            raise MoveError('email: %s has no mailbox in the mail database' % self.email)
        self.current, self.maildir = row
        self.move = self.db.move(self.email)
        self.hosts = self.db.hosts()

    def address(self, name):
        if name not in self.hosts:
            raise MoveError('%s: no mailbox host of that name in the mail database' % name)
        return self.hosts[name]['address']

    def local(self, name):
        return self.is_local(self.address(name))

    def unfinished(self):
        return self.move is not None and self.move['state'] != 'done'

    def set_state(self, state, host=None, hold=None, **saved):
        self.db.set_state(self.email, state, host=host, hold=hold, **saved)
        if host is not None:
            self.current = host
        if state is None:
            self.move, self.locked = None, False
        else:
            self.move.update(saved, state=state)

    # -- the lock ------------------------------------------------------------
    def refuse(self, holder):
        return MoveError('%s: another run is moving this mailbox: the lock is held by %s until %s; wait for it '
                         '(or, if it died, until the lock expires)' % (self.email, holder[0], holder[1]))

    def lock(self):
        holder = self.db.lock(self.email, self.owner, self.p['lock_seconds'])
        if holder is not None and holder[0] and not self.owner_alive(holder[0]):
            holder = self.db.lock(self.email, self.owner, self.p['lock_seconds'], dead=holder[0])
        if holder is not None:
            raise self.refuse(holder)
        self.locked = True

    def start(self, source, target):
        holder = self.db.start(self.email, source, target, self.owner, self.p['lock_seconds'])
        if holder is not None:
            raise self.refuse(holder)
        self.locked = True
        self.move = dict(source=source, target=target, state='copying', sync_state=None, source_status=None)

    def unlock(self):
        if self.locked:
            self.db.unlock(self.email, self.owner)
            self.locked = False

    # -- the entry point -----------------------------------------------------
    def run(self):
        self.load()
        result = dict(email=self.email, target=self.current, outcome='none', changed=False)
        try:
            if self.p['cleanup']:
                return self.cleanup(result)
            if self.p['abort']:
                return self.abort(result)
            return self.move_to(result)
        finally:
            self.unlock()
            if self.warnings:
                result['warnings'] = self.warnings

    # -- Dovecot: sessions and syncs -----------------------------------------
    def kick_proxies(self):
        """doveadm proxy kick on every proxy, best effort: a proxy that is down
        has no session, and the shard's kick ends the proxied ones anyway."""
        failed = []
        for proxy in self.p['proxies']:
            try:
                self.dovecot.kick(proxy, proxy=True)
            except Exception as e:  # the shard's kick below is the one that must work
                failed.append(proxy)
                self.warnings.append('%s: proxy kick on %s failed (%s); the kick on the shard ends the '
                                     'sessions it proxied' % (self.email, proxy, e))
        return failed

    def quiesce(self, shard, proxies=True):
        """End the user's sessions on shard (and the proxies) and wait until
        shard reports none (doveadm who)."""
        address = self.address(shard)
        if proxies:
            self.kick_proxies()
        deadline = self.clock() + self.p['quiet_timeout']
        while True:
            self.dovecot.kick(address)
            sessions = self.dovecot.who(address)
            if not sessions:
                return
            if self.clock() >= deadline:
                raise MoveError('%s: %s still reports sessions of the user %.0f s after the kick (doveadm who: %s); '
                                'nothing synced yet, run again to resume' % (
                                    self.email, shard, self.p['quiet_timeout'], ' '.join(sessions)))
            self.sleep(0.2)

    def settle(self, peer, watch):
        """Two-way syncs with peer (incremental, the saved dsync state) until a
        whole pass finds watch (the side writers were stopped on) unchanged
        and without a session; watch's status then."""
        self.sync_seconds = 0.0
        for _pass in range(self.p['max_syncs']):
            left = self.left()
            if left is not None and left <= 0:
                raise MoveError('%s: run_seconds (%d) reached during the final syncs; still held (the hold ends by '
                                'itself), run again to resume' % (self.email, self.p['run_seconds']))
            before = self.dovecot.status(self.address(watch))
            self.sync_seconds += self.dsync('sync', peer)
            after = self.dovecot.status(self.address(watch))
            if before == after and not self.dovecot.who(self.address(watch)):
                return after
            self.dovecot.kick(self.address(watch))
        raise MoveError('%s: %s kept changing through %d final syncs; the hold stays until it expires, run again '
                        'to resume' % (self.email, watch, self.p['max_syncs']))

    def final_sync(self):
        """Quiet passes (settle), then the proof that the target holds every
        message of the source, by mailbox and GUID. A saved state can miss a
        message: one saved on the source just before the flip while a delivery
        took the same UID on the target (seen in the lab, 3 moves in 21 under
        load). Then one full two-way pass, which compares every message, and
        the proof again; still missing: refused, held, nothing released.
        The source's status at the proof."""
        source = self.move['source']
        status = self.settle(source, source)
        missing = self.missing_on_target()
        if missing:
            self.warnings.append('%s: after the final sync %d message(s) of %s were not on %s (%s); one full '
                                 'two-way pass' % (self.email, len(missing), source, self.move['target'],
                                                   self.shown(missing)))
            self.sync_seconds += self.dsync('sync', source, full=True)
            status = self.settle(source, source)
            missing = self.missing_on_target()
        if missing:
            raise MoveError('%s: %d message(s) of %s are not on %s even after a full two-way sync (%s); still '
                            'held (the hold ends by itself), nothing released or removed; run again to resume'
                            % (self.email, len(missing), source, self.move['target'], self.shown(missing)))
        return status

    def missing_on_target(self):
        """The source's messages (mailbox, GUID) that the target lacks."""
        there = set(self.dovecot.messages(self.address(self.move['target'])))
        return sorted(set(self.dovecot.messages(self.address(self.move['source']))) - there)

    @staticmethod
    def shown(missing):
        return ', '.join('%s %s' % m for m in missing[:5]) + (' and %d more' % (len(missing) - 5)
                                                              if len(missing) > 5 else '')

    def dsync(self, mode, peer, full=False):
        """One dsync pass with peer, incremental from the saved state (full:
        from none; a state dsync refuses is answered by a full pass, as before
        states were kept); the new state saved. Its seconds."""
        state = '' if full else (self.move.get('sync_state') or '')
        try:
            seconds, state = self.dovecot.dsync(mode, self.address(peer), state)
        except DsyncError as e:
            if not state:
                raise
            self.warnings.append('%s; a full pass instead' % e)
            seconds, state = self.dovecot.dsync(mode, self.address(peer), '')
        self.db.save(self.email, sync_state=state)
        self.move['sync_state'] = state
        return seconds

    # -- the run's bound and the servers ---------------------------------------
    def left(self):
        """Seconds left of run_seconds (None: no bound)."""
        if not self.p.get('run_seconds'):
            return None
        return self.p['run_seconds'] - (self.clock() - self.started)

    def check_servers(self, *shards):
        """The doveadm servers of shards answer (an authenticated doveadm
        who); else refuse, naming the server, before anything changes."""
        for shard in shards:
            try:
                self.dovecot.who(self.address(shard))
            except DoveadmError as e:
                raise MoveError('%s: the doveadm server of %s (%s) does not answer (%s); the move needs it, '
                                'nothing was changed' % (self.email, shard, self.address(shard), e))

    def replicas_applied(self, held):
        """Every replica that readers use (Dovecot and Postfix read them while
        the primary is up) has applied this run's last commit: the flip and
        hold before anything relies on readers seeing them (held), or the
        record before the flip (a replica found behind then fails the run
        before the hold)."""
        try:
            self.warnings.extend(self.replicas())
        except ReplicaLagError as e:
            raise MoveError('%s: %s; %s' % (self.email, e, 'still held (the hold ends by itself), run again to '
                                            'resume' if held else 'not held, nothing changed; run again'))

    # -- the move ------------------------------------------------------------
    def check_target(self):
        target = (self.p['target'] or '').strip()
        if not target:
            raise MoveError('target: the mailbox host to move %s to is required' % self.email)
        self.address(target)
        if self.move is not None and self.move['target'] != target and self.unfinished():
            raise MoveError('%s: a move to %s is unfinished; finish it (target: %s) or roll it back (abort: true) '
                            'first' % (self.email, self.move['target'], self.move['target']))
        return target

    def finished_record(self, target):
        """True when the request is a finished move's (a second run); refuses
        a new move while a finished one's source copy is not removed."""
        if self.move is None or self.move['state'] != 'done':
            return False
        if self.current == target:
            return True
        raise MoveError('%s: the copy the move from %s to %s left on %s is not removed yet; remove it first '
                        '(cleanup: true) so that its record is never overwritten'
                        % (self.email, self.move['source'], self.move['target'], self.move['source']))

    def check_start(self, target):
        if self.hosts[target]['state'] != 'active':
            raise MoveError('target: %s is %s; mailboxes move only to active mailbox hosts'
                            % (target, self.hosts[target]['state']))
        if self.current is None:
            raise MoveError('%s: the mailbox has no mailbox host to move from; set it with mail_user' % self.email)
        if self.address(self.current) == self.address(target):
            raise MoveError('%s: %s and %s are the same server (%s); nothing to move'
                            % (self.email, self.current, target, self.address(target)))

    def move_to(self, result):
        target = self.check_target()
        if self.finished_record(target) or (self.current == target and not self.unfinished()):
            return result
        if not self.unfinished():
            self.check_start(target)
        if not self.local(target):
            raise MoveError('target: run this on %s (%s): the copy is pulled onto the target host'
                            % (target, self.address(target)))
        source = self.move['source'] if self.unfinished() else self.current
        result.update(changed=True, source=source, outcome='resumed' if self.unfinished() else 'moved')
        self.check_servers(source, target)
        if not self.unfinished() or self.move['state'] == 'copying':
            result['messages'], result['bytes'] = self.dovecot.size(self.address(source))
        if self.check_mode:
            result['target'] = target
            return result
        start = self.clock()
        self.lock() if self.unfinished() else self.start(source, target)
        if self.move['state'] == 'copying':
            self.copy(result)
        self.finish(result)
        result['seconds'] = round(self.clock() - start, 3)
        return result

    def copy(self, result):
        """Live copy (doveadm backup -R: the target made exactly the source),
        twice, incremental; then the hold and the flip in one transaction."""
        seconds = self.dsync('backup', self.move['source']) + self.dsync('backup', self.move['source'])
        result['copy_seconds'] = round(seconds, 3)
        left = self.left()
        if left is not None and left < self.p['hold_timeout']:
            raise MoveError('%s: the copy took %.0f s and %.0f s of run_seconds are left, less than a hold '
                            '(hold_timeout %d): not held, still copying; run again to resume (the copy is '
                            'incremental)' % (self.email, seconds, max(left, 0), self.p['hold_timeout']))
        # Both servers answer just before the flip: the hold never starts
        # towards a source that cannot be emptied or a target that cannot be undone.
        self.check_servers(self.move['source'], self.move['target'])
        self.replicas_applied(held=False)
        self.set_state('held', host=self.move['target'], hold=self.p['hold_timeout'])

    def finish(self, result):
        """From held: no session left on the source, syncs until a pass finds
        nothing new there, release (state done, the source's status saved)."""
        held = self.clock()
        self.lock()
        # The flip and hold (this run's or an earlier one's: the lock is
        # written after it) reach every reader before the kicks.
        self.replicas_applied(held=True)
        self.quiesce(self.move['source'])
        status = self.final_sync()
        self.set_state('done', hold=0, source_status=json.dumps(status))
        result['hold_seconds'] = round(self.clock() - held, 3)
        result['sync_seconds'] = round(self.sync_seconds, 3)
        if result['hold_seconds'] >= self.p['hold_timeout']:
            self.warnings.append('%s: the hold expired before the final sync ended (%.1f s, hold_timeout %d): '
                                 'logins may have reached %s early' % (self.email, result['hold_seconds'],
                                                                       self.p['hold_timeout'], self.move['target']))
        result['target'] = self.move['target']

    # -- abort ---------------------------------------------------------------
    def abort(self, result):
        if not self.unfinished():
            return result
        source, target = self.move['source'], self.move['target']
        if not self.local(target):
            raise MoveError('%s: run the abort on %s, the target of the move (its copy is removed there)'
                            % (self.email, target))
        result.update(changed=True, outcome='aborted', source=source, target=source)
        if self.check_mode:
            return result
        self.lock()
        if self.move['state'] == 'held':
            # Back to the source: hold, flip back, no session on the target,
            # syncs until the target is quiet; then the target's copy is no
            # longer live (state copying again, hold released).
            self.set_state('held', host=source, hold=self.p['hold_timeout'])
            self.replicas_applied(held=True)
            self.quiesce(target)
            self.settle(source, target)
            self.set_state('copying', hold=0)
        result['removed'] = self.remove_target_copy(source)
        self.set_state(None)
        return result

    def copy_path(self):
        """The path of this user's copy, refused when it is, holds or lies
        inside another user's mailbox (the maildirs that may, from the
        index: MoveDB.other_maildirs)."""
        return self.fs.copy_path(self.email, self.p['mail_root'], self.maildir,
                                 self.db.other_maildirs(self.email, self.maildir))

    def remove_target_copy(self, source):
        if self.current != source:
            raise MoveError('%s: the mailbox is served from %s, not %s; the copy here is live, nothing removed'
                            % (self.email, self.current, source))
        path = self.copy_path()
        return path if self.fs.remove_copy(path) else None

    # -- cleanup -------------------------------------------------------------
    def cleanup(self, result):
        if self.move is None:
            return result
        if self.move['state'] != 'done':
            raise MoveError('%s: the move to %s is unfinished; finish it before removing the source copy'
                            % (self.email, self.move['target']))
        source = self.move['source']
        if source == self.current:
            raise MoveError('%s: the mailbox is on %s again; its copy there is the live one' % (self.email, source))
        result['source'] = source
        if not self.local(source):
            return result  # not this host's copy: every shard runs it, only the source acts
        path = self.copy_path()
        result.update(changed=True, outcome='cleaned', path=path)
        if self.check_mode:
            return result
        self.lock()
        if self.fs.exists(path):
            self.prove_copied(source, result)
        self.fs.remove_copy(path)
        self.set_state(None)
        return result

    def prove_copied(self, source, result):
        """The old copy is what the final sync left (its status then, saved):
        nothing was written there since, the target holds all of it. Else
        (a late write) its sessions are ended and it is synced into the
        target, two-way from the saved state, until a pass finds it quiet."""
        saved = self.move.get('source_status')
        if not saved:
            raise MoveError('%s: no status of the copy on %s was saved at the final sync, so nothing proves the '
                            'target holds all of it; nothing removed' % (self.email, source))
        now = self.dovecot.status(self.address(source))
        if json.loads(saved) == json.loads(json.dumps(now)):
            return
        self.warnings.append('%s: the copy on %s changed since the final sync (then %s, now %s); synced into %s '
                             'before its removal' % (self.email, source, saved, json.dumps(now), self.move['target']))
        self.quiesce(source, proxies=False)
        self.settle(self.move['target'], source)
        result['merged'] = True
