# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writes through any node of a Galera cluster (issue 28, step W of
docs/design/no-spof-plan.md), on the harness's real three-node cluster
(mailstack_testlib.galera).

A transaction that another node's commit of the same rows overtakes ends
with 1213 (a certification conflict, or the applier aborting it): the
modules run it again from its reads (bulk.py, mailbox_move_db.py). To make
the two writers meet every time, a trigger (DDL: on every node) holds the
test user's row for 3 s after each write, inside the writer's
transaction; the other writer, on another node, changes the row meanwhile.

- two mail_user runs, one through node1 and one through node2, for the same
  user at once: both succeed, one of them with retries >= 1, and the row is
  the plan of that one (it committed last, from a fresh read);
- two starts of one user's move, through two nodes at once: exactly one
  holds the record, the other is told its holder (MoveDB's IntegrityError
  path after the retry).

Red (seen): maildb.WRITE_RETRIES = 0 -> the second run fails with "(1213)
Deadlock found", the second start raises the 1213.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import threading

import pytest

from ansible_collections.mailops.mailstack.plugins.module_utils.mailbox_move_db import MoveDB
from mailstack_testlib.mariadb import ADMIN_PASSWORD, ADMIN_USER, DB_NAME, Runner

# One worker runs every test of the Galera cluster (scripts/test.sh: --dist loadgroup): one cluster per session.
pytestmark = pytest.mark.xdist_group('galera')

DOMAIN = 'race.test'
EMAIL = 'race@race.test'
MOVER_EMAIL = 'mover@race.test'
HOLD = 3


class _Through(object):
    """Runner's server: the module logs in to one node."""

    def __init__(self, cluster, node):
        self.cluster, self.node = cluster, node

    def login_args(self, socket_path=False):
        return dict(login_user=ADMIN_USER, login_password=ADMIN_PASSWORD, database=DB_NAME,
                    login_host=[self.node.address], login_port=self.cluster.sql_port)


def _sql(node, statements, database=DB_NAME):
    conn = node.root(database)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            return cur.fetchall()
    finally:
        conn.close()


@pytest.fixture
def race(galera):
    """The test user and domain, and the triggers that hold their rows."""
    first = galera.nodes[0]
    _sql(first, [
        "DELETE FROM mailbox_move WHERE email IN ('%s', '%s')" % (EMAIL, MOVER_EMAIL),
        "DELETE FROM mailbox WHERE domain = '%s'" % DOMAIN,
        "DELETE FROM domain WHERE name = '%s'" % DOMAIN,
        "INSERT INTO domain (name, kind, active) VALUES ('%s', 'local', 1)" % DOMAIN,
        "INSERT IGNORE INTO mailbox_host (name, address) VALUES ('ms1', '10.0.0.1'), ('ms2', '10.0.0.2')",
        "INSERT INTO mailbox (email, local_part, domain, password, quota, mailbox_host, maildir) VALUES "
        "('%s', 'race', '%s', '{PLAIN}x', 1024, 'ms1', 'race.test/race/'), "
        "('%s', 'mover', '%s', '{PLAIN}x', 1024, 'ms1', 'race.test/mover/')" % (EMAIL, DOMAIN, MOVER_EMAIL, DOMAIN),
    ])
    triggers = [('race_hold_update', 'AFTER UPDATE ON mailbox', 'NEW.email = \'%s\'' % EMAIL),
                ('race_hold_move', 'AFTER INSERT ON mailbox_move', 'NEW.email = \'%s\'' % MOVER_EMAIL)]
    _sql(first, ['CREATE OR REPLACE TRIGGER %s %s FOR EACH ROW BEGIN IF %s THEN SET @held = SLEEP(%d); END IF; END'
                 % (name, when, cond, HOLD) for name, when, cond in triggers])
    try:
        yield galera
    finally:
        _sql(first, ['DROP TRIGGER IF EXISTS %s' % name for name, _when, _cond in triggers])


def _both(*calls):
    """Run the calls at once, each in a thread; their results in order
    (an exception is a result)."""
    results = [None] * len(calls)

    def run(i, call):
        try:
            results[i] = call()
        except Exception as e:  # pylint: disable=broad-except
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return results


def test_two_runs_for_one_user_through_two_nodes_both_succeed(race, tmp_path):
    first, second = race.nodes[0], race.nodes[1]
    quotas = {first.name: '1M', second.name: '2M'}
    for node in (first, second):
        (tmp_path / node.name).mkdir()
    runners = dict((node.name, Runner(_Through(race, node), tmp_path / node.name)) for node in (first, second))

    def run(node):
        return lambda: runners[node.name].run('mail_user', dict(email=EMAIL, quota=quotas[node.name]))

    results = _both(run(first), run(second))
    for node, result in zip((first, second), results):
        assert not isinstance(result, Exception), result
        assert not result.get('failed'), (node.name, result.get('msg'), runners[node.name].last_output[-3000:])
        assert result['updated'] == 1, result
    retried = [node for node, result in zip((first, second), results) if result['retries'] >= 1]
    assert len(retried) == 1, [r['retries'] for r in results]
    stored = _sql(second, ["SELECT quota FROM mailbox WHERE email = '%s'" % EMAIL])[0][0]
    assert stored == {'1M': 1048576, '2M': 2097152}[quotas[retried[0].name]], (stored, retried[0].name)


def test_two_starts_of_one_move_through_two_nodes_give_one_holder(race):
    first, second = race.nodes[0], race.nodes[1]
    dbs = [MoveDB(node.admin()) for node in (first, second)]
    try:
        results = _both(lambda: dbs[0].start(MOVER_EMAIL, 'ms1', 'ms2', 'owner-1', 900),
                        lambda: dbs[1].start(MOVER_EMAIL, 'ms1', 'ms2', 'owner-2', 900))
        for result in results:
            assert not isinstance(result, Exception), (repr(result), [db.retries for db in dbs])
        winners = [i for i, result in enumerate(results) if result is None]
        assert len(winners) == 1, results
        loser = 1 - winners[0]
        assert results[loser][0] == 'owner-%d' % (winners[0] + 1), results
        assert dbs[loser].retries >= 1
        assert dbs[0].holder(MOVER_EMAIL)[0] == 'owner-%d' % (winners[0] + 1)
    finally:
        for db in dbs:
            db.conn.close()


def test_a_flip_is_waited_for_on_every_other_node(race):
    """The Galera form of mailbox_move's replica wait (replica_wait.waiter):
    WSREP_LAST_WRITTEN_GTID() of the flip's session, then
    WSREP_SYNC_WAIT_UPTO_GTID on each other node of login_host. A node that
    stops applying (FLUSH TABLES WITH READ LOCK holds its applier) fails the
    wait by name. Red (seen): the wait taken for a replica wait
    (MASTER_GTID_WAIT of @@last_gtid, empty without a binary log): nothing
    is waited for and the held node passes."""
    from ansible_collections.mailops.mailstack.plugins.module_utils.replica_wait import ReplicaLagError, waiter
    first, third = race.nodes[0], race.nodes[2]
    params = dict(login_host=race.login_hosts(), login_port=race.sql_port, login_user=ADMIN_USER,
                  login_password=ADMIN_PASSWORD, login_unix_socket=None, ca_cert=None, connect_timeout=5,
                  database=DB_NAME, replicas=None, replica_timeout=3)
    conn = first.admin()
    try:
        wait = waiter(params, conn)
        with conn.cursor() as cur:
            cur.execute("UPDATE mailbox SET mailbox_host = 'ms2' WHERE email = %s", (MOVER_EMAIL,))
        conn.commit()
        assert wait() == []
        held = third.root()
        try:
            with held.cursor() as cur:
                cur.execute('FLUSH TABLES WITH READ LOCK')
            with conn.cursor() as cur:
                cur.execute("UPDATE mailbox SET mailbox_host = 'ms1' WHERE email = %s", (MOVER_EMAIL,))
            conn.commit()
            with pytest.raises(ReplicaLagError) as err:
                wait()
            assert '%s has not applied it within 3 s' % third.address in str(err.value), str(err.value)
            assert race.nodes[1].address not in str(err.value)
        finally:
            with held.cursor() as cur:
                cur.execute('UNLOCK TABLES')
            held.close()
    finally:
        conn.close()
