#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mailbox_move
short_description: Move one user's mailbox to another mailbox server (shard) without losing a message
version_added: 0.2.0
description:
  - Moves the mailbox of O(email) from the shard the mail database names for it (C(mailbox.mailbox_host)) to
    O(target), while the user stays reachable, in the order Dovecot's proxy documentation describes.
  - 1. Copy the mailbox with dsync (C(doveadm backup), pulling from the source shard's doveadm server over TCP)
    while the user keeps working on the source; a second, incremental pass shrinks what is left.
  - 2. Hold and flip in one transaction - C(mailbox.hold_until) is set (the sharded SMTP tier answers 4xx for
    the user, the proxies delay the user's logins) and C(mailbox.mailbox_host) becomes O(target).
  - 3. End the user's sessions - C(doveadm proxy kick) on every proxy of O(proxies) and C(doveadm kick) on the
    source shard; clients reconnect through the same proxy name and land on O(target).
  - 4. Final two-way C(doveadm sync) with the source (nothing either side received is dropped), then release
    the hold. The SMTP tier delivers the held mail at its next attempt (the C(move_user) playbook asks it
    at once).
  - dsync keeps UIDs, UIDVALIDITY and flags, so clients do not download the mailbox again.
  - Each step is recorded in the C(mailbox_move) table first, so a run that was interrupted resumes where it
    stopped, and O(abort=true) rolls an unfinished move back. The copy on the source shard stays until
    O(cleanup=true) removes it, run on the source shard.
  - Runs on the target shard (or, with O(cleanup=true), on the source shard), which needs the doveadm server
    settings of the C(dovecot) role (C(dovecot_doveadm_listen), C(dovecot_doveadm_password)) and an account
    on the mail database that may update C(mailbox) and C(mailbox_move).
  - Why a module of its own - no Ansible module moves a Dovecot mailbox between servers; the community
    C(dsync) examples are shell scripts that neither hold deliveries nor resume.
options:
  email:
    description:
      - The user whose mailbox moves.
    type: str
    required: true
  target:
    description:
      - The name of the mailbox host (C(mailbox_host.name)) the mailbox moves to. It must be C(active), and the
        module must run on it (one of this host's addresses is the target's address).
      - Ignored with O(cleanup=true).
    type: str
  proxies:
    description:
      - The doveadm servers of the Dovecot proxies (C(host) or C(host:port)), where the user's sessions are
        ended once the mailbox has moved.
    type: list
    elements: str
    default: []
  doveadm_port:
    description:
      - The TCP port of the doveadm servers (where no port is given).
    type: int
    default: 24245
  doveadm_password:
    description:
      - The doveadm servers' shared secret (C(dovecot_doveadm_password)).
    type: str
    required: true
  hold_timeout:
    description:
      - The longest the hold may last, in seconds; if this run dies the hold ends by itself then (the next run
        resumes the move and its final sync keeps everything). Mail waits in the SMTP tier meanwhile.
    type: int
    default: 120
  settle_seconds:
    description:
      - After the flip and the kicks, how long to wait before the final sync, so that a delivery the source
        shard's LMTP accepted just before the flip (and is still writing) is in the source copy when the sync
        reads it. Part of the hold.
    type: float
    default: 2
  abort:
    description:
      - Roll an unfinished move of O(email) back - the mailbox stays on (or returns to) the source shard. Does
        nothing when no move is unfinished.
    type: bool
    default: false
  cleanup:
    description:
      - Remove the copy a finished move left on the source shard, and the move's record. It acts only on the
        source shard (on any other host it changes nothing), so it can run on every shard.
    type: bool
    default: false
  mail_root:
    description:
      - With O(cleanup=true), the root of the Maildirs (C(dovecot_mail_root)); the copy is
        C(<mail_root>/<mailbox.maildir>).
    type: path
    default: /var/vmail
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mailops.mailstack.maildb
  - mailops.mailstack.maildb.mail_database
attributes:
  check_mode:
    support: full
    details: Reports the plan, and the number and size of the messages to copy (asked from the source shard).
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Idempotent - with the mailbox already on O(target) and no move unfinished, nothing changes.
  - Needs the C(mail_schema) at version 3 or later.
seealso:
  - module: mailops.mailstack.mail_host
  - module: mailops.mailstack.mail_user
  - name: Dovecot proxies, moving users between backends
    description: The procedure this module follows.
    link: https://doc.dovecot.org/2.3/configuration_manual/authentication/proxies/
author:
  - mailstack developers (@mailops)
'''

EXAMPLES = r'''
- name: Move alice to ms2 (run on ms2)
  mailops.mailstack.mailbox_move:
    email: alice@example.org
    target: ms2
    proxies: [10.0.0.31, 10.0.0.32]
    doveadm_password: "{{ dovecot_doveadm_password }}"
    login_host: 10.0.0.53
    login_user: mailadmin
    login_password: "{{ mail_database_admin_password }}"

- name: Remove the copy the move left on ms1 (run on ms1)
  mailops.mailstack.mailbox_move:
    email: alice@example.org
    cleanup: true
    doveadm_password: "{{ dovecot_doveadm_password }}"
    login_host: 10.0.0.53
    login_user: mailadmin
    login_password: "{{ mail_database_admin_password }}"
'''

RETURN = r'''
email:
  description: The user.
  returned: always
  type: str
source:
  description: The shard the mailbox was on (or moves from).
  returned: when a move is planned, done or rolled back
  type: str
target:
  description: The shard the mailbox is on after this run.
  returned: always
  type: str
outcome:
  description:
    - What this run did - C(none), C(moved), C(resumed), C(aborted), C(cleaned).
    - Not named C(action), which Ansible's callbacks use for the module's name.
  returned: always
  type: str
messages:
  description: Messages in the mailbox on the source shard (check mode, and before the copy).
  returned: when a move is planned or done
  type: int
bytes:
  description: Their size in bytes (virtual size).
  returned: when a move is planned or done
  type: int
copy_seconds:
  description: Time of the copy while the user stayed live.
  returned: when the mailbox moved
  type: float
hold_seconds:
  description: How long the user's deliveries and logins were held.
  returned: when the mailbox moved
  type: float
sync_seconds:
  description: Time of the final two-way sync, within the hold.
  returned: when the mailbox moved
  type: float
seconds:
  description: Time of the move in the module, from the start of the copy to the release of the hold.
  returned: when the mailbox moved
  type: float
'''

import os
import shutil
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mailops.mailstack.plugins.module_utils.doveadm import DoveadmClient, DoveadmError
from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import (
    connect, db_error_text, maildb_argument_spec, pymysql, query, require_schema,
)

LOCK = 'mailstack_move:%s'


class MoveError(Exception):
    pass


def local_addresses(module):
    rc, out, err = module.run_command(['ip', '-o', 'addr', 'show'])
    if rc != 0:
        raise MoveError('cannot list this host\'s addresses (ip addr): %s' % err.strip())
    found = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[2] in ('inet', 'inet6'):
            found.add(parts[3].split('/')[0])
    return found


class Mover(object):
    def __init__(self, module, conn):
        self.module = module
        self.conn = conn
        self.p = module.params
        self.email = self.p['email'].strip().lower()

    # -- the database ---------------------------------------------------------
    def query(self, sql, args=()):
        return query(self.conn, sql, args)

    def load(self):
        rows = self.query('SELECT mailbox_host, maildir FROM mailbox WHERE email = %s', (self.email,))
        if not rows:
            raise MoveError('email: %s has no mailbox in the mail database' % self.email)
        self.current, self.maildir = rows[0]
        rows = self.query('SELECT source, target, state FROM mailbox_move WHERE email = %s', (self.email,))
        self.move = dict(zip(('source', 'target', 'state'), rows[0])) if rows else None
        self.hosts = dict((r[0], {'address': r[1], 'state': r[2]})
                          for r in self.query('SELECT name, address, state FROM mailbox_host'))

    def address(self, name):
        if name not in self.hosts:
            raise MoveError('%s: no mailbox host of that name in the mail database' % name)
        return self.hosts[name]['address']

    def set_state(self, state, host=None, hold=None):
        """One transaction: the move's record and the mailbox row together."""
        cur = self.conn.cursor()
        try:
            if state is None:
                cur.execute('DELETE FROM mailbox_move WHERE email = %s', (self.email,))
            elif state == 'copying':
                cur.execute('REPLACE INTO mailbox_move (email, source, target, state) VALUES (%s, %s, %s, %s)',
                            (self.email, self.move['source'], self.move['target'], state))
            else:
                cur.execute('UPDATE mailbox_move SET state = %s WHERE email = %s', (state, self.email))
            if host is not None:
                cur.execute('UPDATE mailbox SET mailbox_host = %s WHERE email = %s', (host, self.email))
            if hold is True:
                cur.execute('UPDATE mailbox SET hold_until = NOW() + INTERVAL %s SECOND WHERE email = %s',
                            (self.p['hold_timeout'], self.email))
            elif hold is False:
                cur.execute('UPDATE mailbox SET hold_until = NULL WHERE email = %s', (self.email,))
            self.conn.commit()
        except Exception:
            self.conn.rollback()
            raise
        finally:
            cur.close()
        if state is not None and self.move:
            self.move['state'] = state

    # -- Dovecot --------------------------------------------------------------
    def doveadm(self, target, words, user=''):
        client = DoveadmClient(target, self.p['doveadm_password'], self.p['doveadm_port'])
        try:
            return client.run(words, user=user)
        finally:
            client.close()

    def size(self, shard):
        # One row per mailbox: its name, then the fields asked for.
        values = self.doveadm(self.address(shard), ['mailbox', 'status', 'messages vsize', '*'], user=self.email)
        rows = [values[i:i + 3] for i in range(0, len(values) - 2, 3)]
        return sum(int(r[1]) for r in rows), sum(int(r[2]) for r in rows)

    def dsync(self, mode, shard):
        """doveadm backup -R (pull an exact copy) or sync (two-way) with shard."""
        host = self.address(shard)
        remote = 'tcp:%s:%d' % ('[%s]' % host if ':' in host else host, self.p['doveadm_port'])
        cmd = ['doveadm', mode] + (['-R'] if mode == 'backup' else []) + ['-u', self.email, remote]
        start = time.time()
        rc, out, err = self.module.run_command(cmd)
        if rc != 0:
            raise MoveError('%s: doveadm %s with %s failed (exit %d): %s'
                            % (self.email, mode, shard, rc, (err or out).strip()))
        return time.time() - start

    def kick_at(self, server, words):
        try:
            self.doveadm(server, words + [self.email])
        except DoveadmError as e:
            if e.code != 'NOTFOUND':  # NOTFOUND: no session to end
                raise

    def kick(self, shard):
        """End the user's sessions on every proxy and on the shard."""
        for proxy in self.p['proxies']:
            self.kick_at(proxy, ['proxy', 'kick'])
        self.kick_at(self.address(shard), ['kick'])

    # -- the steps -------------------------------------------------------------
    def finish(self, result):
        """From 'held': end the sessions, final two-way sync, release."""
        source, target = self.move['source'], self.move['target']
        held = time.time()
        self.kick(source)
        # A delivery that began on the source before the flip must be written
        # before the sync reads the source (new ones go to the target).
        time.sleep(self.p['settle_seconds'])
        result['sync_seconds'] = round(self.dsync('sync', source), 3)
        self.set_state('done', hold=False)
        result['hold_seconds'] = round(time.time() - held + result.get('flip_seconds', 0), 3)
        result['target'] = target

    def run(self):
        p = self.p
        self.load()
        result = dict(email=self.email, target=self.current, outcome='none', changed=False)
        unfinished = self.move is not None and self.move['state'] != 'done'

        if p['cleanup']:
            return self.cleanup(result)

        if p['abort']:
            if not unfinished:
                return result
            result.update(changed=True, outcome='aborted', source=self.move['source'])
            if self.module.check_mode:
                return result
            if self.move['state'] == 'held':
                # Back to the source: hold, flip back, end the sessions on
                # the target, sync both ways, release.
                source, target = self.move['source'], self.move['target']
                self.set_state('held', host=source, hold=True)
                self.kick(target)
                time.sleep(self.p['settle_seconds'])
                self.dsync('sync', target) if self.is_local(source) else self.dsync('sync', source)
                self.set_state(None, hold=False)
            else:
                self.set_state(None)
            result['target'] = self.move['source']
            return result

        target = (p['target'] or '').strip()
        if not target:
            raise MoveError('target: the mailbox host to move %s to is required' % self.email)
        if unfinished and self.move['target'] != target:
            raise MoveError('%s: a move to %s is unfinished; finish it (target: %s) or roll it back (abort: true) '
                            'first' % (self.email, self.move['target'], self.move['target']))
        if self.current == target and not unfinished:
            return result
        self.address(target)
        if not unfinished and self.hosts[target]['state'] != 'active':
            raise MoveError('target: %s is %s; mailboxes move only to active mailbox hosts'
                            % (target, self.hosts[target]['state']))
        if not self.is_local(target):
            raise MoveError('target: run this on %s (%s): the copy is pulled onto the target host'
                            % (target, self.address(target)))
        source = self.move['source'] if unfinished else self.current
        if source is None:
            raise MoveError('%s: the mailbox has no mailbox host to move from; set it with mail_user' % self.email)
        result.update(changed=True, source=source, outcome='resumed' if unfinished else 'moved')
        if not unfinished or self.move['state'] == 'copying':
            result['messages'], result['bytes'] = self.size(source)
        if self.module.check_mode:
            result['target'] = target
            return result

        start = time.time()
        if not unfinished:
            self.move = dict(source=source, target=target, state='copying')
            self.set_state('copying')
        if self.move['state'] == 'copying':
            # Live copy, then an incremental pass so little is left for the hold.
            result['copy_seconds'] = round(self.dsync('backup', source) + self.dsync('backup', source), 3)
            flip = time.time()
            self.set_state('held', host=target, hold=True)
            result['flip_seconds'] = time.time() - flip
        self.finish(result)
        result.pop('flip_seconds', None)
        result['seconds'] = round(time.time() - start, 3)
        return result

    def is_local(self, name):
        if not hasattr(self, '_local'):
            self._local = local_addresses(self.module)
        return self.address(name).strip('[]') in self._local

    def cleanup(self, result):
        if self.move is None or self.move['state'] != 'done':
            if self.move is not None:
                raise MoveError('%s: the move to %s is unfinished; finish it before removing the source copy'
                                % (self.email, self.move['target']))
            return result
        source = self.move['source']
        if source == self.current:
            raise MoveError('%s: the mailbox is on %s again; its copy there is the live one' % (self.email, source))
        if not self.is_local(source):
            # Not this host's copy: run on every shard, only the source acts.
            result['source'] = source
            return result
        path = os.path.join(self.p['mail_root'], self.maildir)
        if not os.path.realpath(path).startswith(os.path.realpath(self.p['mail_root']) + os.sep):
            raise MoveError('%s: maildir %r is outside mail_root' % (self.email, self.maildir))
        result.update(changed=True, outcome='cleaned', source=source, path=path)
        if not self.module.check_mode:
            if os.path.exists(path):
                shutil.rmtree(path)
            self.set_state(None)
        return result


def main():
    argument_spec = maildb_argument_spec()
    argument_spec.update(
        email=dict(type='str', required=True),
        target=dict(type='str'),
        proxies=dict(type='list', elements='str', default=[]),
        doveadm_port=dict(type='int', default=24245),
        doveadm_password=dict(type='str', required=True, no_log=True),
        hold_timeout=dict(type='int', default=120),
        settle_seconds=dict(type='float', default=2),
        abort=dict(type='bool', default=False),
        cleanup=dict(type='bool', default=False),
        mail_root=dict(type='path', default='/var/vmail'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('abort', 'cleanup')])
    if module.params['hold_timeout'] < 10:
        module.fail_json(msg='hold_timeout: must be 10 seconds or more, got %d' % module.params['hold_timeout'])
    if not 0 <= module.params['settle_seconds'] < module.params['hold_timeout'] / 2:
        module.fail_json(msg='settle_seconds: must be 0 or more and under half of hold_timeout, got %s'
                         % module.params['settle_seconds'])
    conn = connect(module)
    mover = Mover(module, conn)
    cur = conn.cursor()
    locked = False
    try:
        require_schema(module, conn, 3)
        cur.execute('SELECT GET_LOCK(%s, 30)', (LOCK % mover.email,))
        locked = cur.fetchone()[0] == 1
        if not locked:
            module.fail_json(msg='%s: another move of this mailbox holds its lock' % mover.email)
        result = mover.run()
    except (MoveError, DoveadmError) as e:
        module.fail_json(msg=str(e), email=mover.email)
    except pymysql.err.MySQLError as e:
        module.fail_json(msg='%s: mail database: %s' % (mover.email, db_error_text(e)))
    finally:
        if locked:
            cur.execute('SELECT RELEASE_LOCK(%s)', (LOCK % mover.email,))
        cur.close()
        conn.close()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
