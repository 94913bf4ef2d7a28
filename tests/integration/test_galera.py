# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The facts of Galera on Debian 12 that the design rests on
(docs/design/no-spof-plan.md 2.1), asserted on a real three-node cluster
(mailstack_testlib.galera: galera-4 26.4, MariaDB 10.11):

- two transactions updating one row on two nodes: the second COMMIT fails
  with 1213 (a certification conflict): the reason the modules retry
  (step W);
- a node cut off from the others (its peers paused) is non-Primary:
  wsrep_ready OFF, reads and writes of a table fail with 1047, yet a new
  connection is accepted and SHOW STATUS answers (why maildb.connect asks
  wsrep_ready before it writes);
- every node killed: grastate.dat says seqno -1, safe_to_bootstrap 0 on
  each, and --wsrep-new-cluster is refused there (exit 1) until
  safe_to_bootstrap is set; --wsrep-recover logs the position.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import time

import pytest

from mailstack_testlib.mariadb import pymysql

# One worker runs every test of the Galera cluster (scripts/test.sh: --dist loadgroup): one cluster per session.
pytestmark = pytest.mark.xdist_group('galera')

DEADLOCK, NOT_PREPARED = 1213, 1047


def _facts_table(node):
    conn = node.root()
    with conn.cursor() as cur:
        cur.execute('CREATE DATABASE IF NOT EXISTS galera_facts')
        cur.execute('CREATE TABLE IF NOT EXISTS galera_facts.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB')
        cur.execute('REPLACE INTO galera_facts.t VALUES (1, 0)')
    conn.close()


def _wait_status(node, name, value, timeout=30):
    deadline = time.time() + timeout
    seen = None
    while time.time() < deadline:
        seen = node.status(name)
        if seen == value:
            return
        time.sleep(0.3)
    node.fail('%s: %s is %r, not %r after %d s' % (node.name, name, seen, value, timeout))


def test_certification_conflict_is_1213(galera):
    first, second = galera.nodes[0], galera.nodes[1]
    _facts_table(first)
    _wait_status(second, 'wsrep_local_recv_queue', '0')
    a, b = first.root(), second.root()
    try:
        a.autocommit(False)
        b.autocommit(False)
        with a.cursor() as ca, b.cursor() as cb:
            ca.execute('UPDATE galera_facts.t SET v = 1 WHERE id = 1')
            cb.execute('UPDATE galera_facts.t SET v = 2 WHERE id = 1')
            a.commit()
            with pytest.raises(pymysql.err.OperationalError) as err:
                b.commit()
        assert err.value.args[0] == DEADLOCK, err.value.args
    finally:
        a.close()
        b.close()
    conn = second.root()
    with conn.cursor() as cur:
        cur.execute('SELECT v FROM galera_facts.t WHERE id = 1')
        assert cur.fetchone()[0] == 1
    conn.close()


def test_non_primary_node_answers_1047(galera):
    alone = galera.nodes[0]
    _facts_table(alone)
    for node in galera.nodes[1:]:
        node.pause()
    _wait_status(alone, 'wsrep_cluster_status', 'non-Primary')
    assert alone.status('wsrep_ready') == 'OFF'
    # A new connection is still accepted and answers what needs no data.
    conn = alone.root()
    try:
        with conn.cursor() as cur:
            cur.execute('SELECT 1')
            assert cur.fetchone()[0] == 1
            for sql in ('SELECT v FROM galera_facts.t', 'UPDATE galera_facts.t SET v = v + 1'):
                with pytest.raises(pymysql.err.MySQLError) as err:
                    cur.execute(sql)
                assert err.value.args[0] == NOT_PREPARED, (sql, err.value.args)
    finally:
        conn.close()
    for node in galera.nodes[1:]:
        node.resume()
    _wait_status(alone, 'wsrep_cluster_status', 'Primary')


def test_bootstrap_refused_without_safe_to_bootstrap(galera):
    node = galera.nodes[0]
    _facts_table(node)
    for each in galera.nodes:
        each.kill()
    states = [each.grastate() for each in galera.nodes]
    assert [(s['seqno'], s['safe_to_bootstrap']) for s in states] == [(-1, 0)] * 3, states
    assert len(set(s['uuid'] for s in states)) == 1
    node.start(bootstrap=True, wait=False)
    assert node.wait_exit(60) == 1
    assert 'It may not be safe to bootstrap the cluster from this node' in node.log_text()
    # The position a crashed node recovers: the cluster's uuid, a real seqno.
    uuid, seqno = node.recover()
    assert uuid == states[0]['uuid'] and seqno > 0, (uuid, seqno)
    # heal() (the next test's) bootstraps from the most advanced node.
    galera.heal()
    assert galera.healthy()
