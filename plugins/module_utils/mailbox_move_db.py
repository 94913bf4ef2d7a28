# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The mail database side of mailbox_move: the mailbox row, the move's
record (mailbox_move, schema version 4) and its lock (an owner and an
expiry in the record itself, so a second run is refused by name and a run
that died frees the user when the lock expires)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import (
    WRITE_RETRIES, is_deadlock, pymysql, query, retry_pause,
)
from ansible_collections.mailops.mailstack.plugins.module_utils.mailbox_move_fs import _relative

MOVE_FIELDS = ('source', 'target', 'state', 'owner', 'lock_until', 'sync_state', 'source_status')
SAVED = ('sync_state', 'source_status')


class MoveDB(object):
    def __init__(self, conn):
        self.conn = conn
        # Transactions run again after a 1213 (a Galera certification
        # conflict with a write through another node); in the move's result.
        self.retries = 0

    def query(self, sql, args=()):
        return query(self.conn, sql, args)

    def mailbox(self, email):
        """(mailbox_host, maildir) of email, or None."""
        found = self.query('SELECT mailbox_host, maildir FROM mailbox WHERE email = %s', (email,))
        return tuple(found[0]) if found else None

    def move(self, email):
        found = self.query('SELECT %s FROM mailbox_move WHERE email = %%s' % ', '.join(MOVE_FIELDS), (email,))
        return dict(zip(MOVE_FIELDS, found[0])) if found else None

    def hosts(self):
        return dict((r[0], {'address': r[1], 'state': r[2]})
                    for r in self.query('SELECT name, address, state FROM mailbox_host'))

    def other_maildirs(self, email, maildir):
        """The other users' maildirs that may be maildir's path, hold it or
        lie inside it: those copy_path refuses are among them (it applies
        the exact test, on normal forms). From the index (maildir_odd,
        maildir) of schema version 6, a few rows whatever the number of
        users: each maildir in its plain form that is the path or one of its
        parents (with or without a trailing /) or lies under it (a prefix),
        and every maildir in another form (maildir_odd = 1; normally none).
        The comparisons are case-insensitive, so more may come back, never
        fewer."""
        rel = _relative(maildir)
        if not rel:
            return []  # copy_path refuses an empty path whatever the others
        parts = rel.split('/')
        near = []
        for n in range(1, len(parts) + 1):
            path = '/'.join(parts[:n])
            near += [path, path + '/']
        under = rel.replace('\\', '\\\\').replace('%', '\\%').replace('_', '\\_') + '/%'
        return [r[0] for r in self.query(
            'SELECT maildir FROM mailbox WHERE email <> %%s AND (maildir_odd = 1 OR (maildir_odd = 0 AND '
            '(maildir IN (%s) OR maildir LIKE %%s)))' % ', '.join(['%s'] * len(near)),
            tuple([email] + near + [under]))]

    def holder(self, email):
        """(owner, lock_until) of the record's lock."""
        move = self.move(email) or {}
        return move.get('owner'), move.get('lock_until')

    def _write(self, statements):
        """One transaction of statements, each self-contained (its WHERE
        decides afresh), so a transaction that lost a certification conflict
        (1213) runs again: WRITE_RETRIES times at most, with a pause and
        jitter. start's INSERT then meets the other writer's row
        (IntegrityError: the holder path)."""
        attempt = 0
        while True:
            cur = self.conn.cursor()
            try:
                for sql, args in statements:
                    cur.execute(sql, args)
                self.conn.commit()
                return
            except Exception as exc:
                self.conn.rollback()
                if not is_deadlock(exc) or attempt >= WRITE_RETRIES:
                    raise
            finally:
                cur.close()
            attempt += 1
            self.retries += 1
            retry_pause(attempt)

    def start(self, email, source, target, owner, seconds):
        """A new record (state copying) locked by owner; None, or the holder
        of the record that exists already (never overwritten)."""
        try:
            self._write([('INSERT INTO mailbox_move (email, source, target, state, owner, lock_until) '
                          'VALUES (%s, %s, %s, %s, %s, NOW() + INTERVAL %s SECOND)',
                          (email, source, target, 'copying', owner, seconds))])
        except pymysql.err.IntegrityError:
            return self.holder(email)
        return None

    def lock(self, email, owner, seconds, dead=None):
        """Take (or renew) the record's lock: free, expired, ours, or held by
        dead (an owner known to have died). None, or the holder."""
        self._write([('UPDATE mailbox_move SET owner = %s, lock_until = NOW() + INTERVAL %s SECOND '
                      'WHERE email = %s AND (owner IS NULL OR owner = %s OR owner = %s OR lock_until < NOW())',
                      (owner, seconds, email, owner, dead or owner))])
        holder = self.holder(email)
        return None if holder[0] == owner else holder

    def unlock(self, email, owner):
        self._write([('UPDATE mailbox_move SET owner = NULL, lock_until = NULL WHERE email = %s AND owner = %s',
                      (email, owner))])

    def set_state(self, email, state, host=None, hold=None, **saved):
        """One transaction: the record's state (None: the record removed), the
        mailbox's host, its hold (seconds from now; 0: released)."""
        statements = []
        if state is None:
            statements.append(('DELETE FROM mailbox_move WHERE email = %s', (email,)))
        else:
            names = sorted(k for k in saved if k in SAVED)
            sets = ''.join(', %s = %%s' % k for k in names)
            statements.append(('UPDATE mailbox_move SET state = %%s%s WHERE email = %%s' % sets,
                               tuple([state] + [saved[k] for k in names] + [email])))
        if host is not None:
            statements.append(('UPDATE mailbox SET mailbox_host = %s WHERE email = %s', (host, email)))
        if hold:
            statements.append(('UPDATE mailbox SET hold_until = NOW() + INTERVAL %s SECOND WHERE email = %s',
                               (hold, email)))
        elif hold is not None:
            statements.append(('UPDATE mailbox SET hold_until = NULL WHERE email = %s', (email,)))
        self._write(statements)

    def save(self, email, **saved):
        names = sorted(k for k in saved if k in SAVED)
        self._write([('UPDATE mailbox_move SET %s WHERE email = %%s' % ', '.join('%s = %%s' % k for k in names),
                      tuple([saved[k] for k in names] + [email]))])
