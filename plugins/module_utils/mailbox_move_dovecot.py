# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What mailbox_move asks Dovecot, for one user: dsync with a saved state,
the mailbox status, sessions (doveadm who) and their end (kick), over the
doveadm servers' TCP protocol (module_utils/doveadm.py) or the local doveadm."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import time

from ansible_collections.mailops.mailstack.plugins.module_utils.doveadm import DoveadmClient, DoveadmError

# Per mailbox: what changes when anything is delivered, saved, copied or
# expunged (not the modseq, which dsync itself may move).
STATUS_FIELDS = 'messages uidnext uidvalidity guid'
# The proxies' kick is best effort: a proxy that does not answer within this
# is reported and passed over.
PROXY_TIMEOUT = 5


class DsyncError(Exception):
    pass


def rows(values, width):
    """doveadm mailbox status values, one row per mailbox (its name, then the fields)."""
    return [values[i:i + width] for i in range(0, len(values) - width + 1, width)]


class Dovecot(object):
    def __init__(self, run_command, email, password, port, client=DoveadmClient, clock=time.time):
        self.run_command = run_command
        self.email = email
        self.password = password
        self.port = port
        self.client = client
        self.clock = clock

    def call(self, address, words, user='', timeout=60):
        client = self.client(address, self.password, self.port, timeout=timeout)
        try:
            return client.run(words, user=user)
        finally:
            client.close()

    def size(self, address):
        """(messages, bytes) of the user's mailboxes on address."""
        found = rows(self.call(address, ['mailbox', 'status', 'messages vsize', '*'], user=self.email), 3)
        return sum(int(r[1]) for r in found), sum(int(r[2]) for r in found)

    def status(self, address):
        """Sorted rows (name, messages, uidnext, uidvalidity, guid) of the user's mailboxes on address."""
        values = self.call(address, ['mailbox', 'status', STATUS_FIELDS, '*'], user=self.email)
        return sorted(rows(values, 1 + len(STATUS_FIELDS.split())))

    def messages(self, address):
        """(mailbox, message GUID) of every message of the user's on address."""
        values = self.call(address, ['fetch', 'mailbox guid', 'all'], user=self.email)
        return [tuple(r) for r in rows(values, 2)]

    def who(self, address):
        """The user's sessions on address (doveadm who, one value per field); [] when none."""
        try:
            values = self.call(address, ['who', self.email])
        except DoveadmError as e:
            if e.code == 'NOTFOUND':
                return []
            raise
        return values if self.email in [v.lower() for v in values] else []

    def kick(self, address, proxy=False):
        """End the user's sessions on address (a proxy: doveadm proxy kick,
        given PROXY_TIMEOUT seconds: a hung proxy must not outlast the hold)."""
        try:
            self.call(address, (['proxy', 'kick'] if proxy else ['kick']) + [self.email],
                      timeout=PROXY_TIMEOUT if proxy else 60)
        except DoveadmError as e:
            if e.code != 'NOTFOUND':  # NOTFOUND: no session to end
                raise

    def dsync(self, mode, address, state):
        """doveadm backup -R (an exact copy of address here) or sync (two-way),
        incremental from state ('' for a full pass); (seconds, new state)."""
        remote = 'tcp:%s:%d' % ('[%s]' % address if ':' in address else address, self.port)
        cmd = ['doveadm', mode] + (['-R'] if mode == 'backup' else []) + ['-s', state, '-u', self.email, remote]
        start = self.clock()
        rc, out, err = self.run_command(cmd)
        if rc != 0:
            raise DsyncError('%s: doveadm %s with %s failed (exit %d): %s'
                             % (self.email, mode, address, rc, (err or out).strip()))
        return self.clock() - start, out.strip()
