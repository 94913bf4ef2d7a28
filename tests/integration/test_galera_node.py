# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""galera_node and the bootstrap decision (module_utils/galera.py, the
filter galera_bootstrap) on a real cluster (mailstack_testlib.galera),
through ansible-playbook:

- fresh data directories: no history, the first node bootstraps;
- every node up: Primary, Synced, size 3, one uuid; nothing to do;
- one node killed: it reports seqno -1 and the cluster's uuid; it joins,
  nobody bootstraps;
- every node killed: the converge refuses and names
  playbooks/galera_recover.yml; with recover the module reads each node's
  position (mariadbd --wsrep-recover) and the recovery bootstraps the most
  advanced one, which brings the cluster back (the next test's heal);
- check mode: the same facts, no recovery run.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

import pytest

from ansible_collections.mailops.mailstack.plugins.filter.galera import galera_bootstrap
from mailstack_testlib.galera import Cluster
from mailstack_testlib.mariadb import Runner

# One worker runs every test of the Galera cluster (scripts/test.sh: --dist loadgroup): one cluster per session.
pytestmark = pytest.mark.xdist_group('galera')


class _NoLogin(object):
    def login_args(self, socket_path=False):
        return {}


def _facts(tmp_path, nodes, recover=False, check_mode=False):
    runner = Runner(_NoLogin(), tmp_path)
    opts = dict(check_mode=True) if check_mode else {}
    # As root no login_user: the module logs in as the user running it (root).
    login = {} if os.geteuid() == 0 else dict(login_user='root')
    results = runner.tasks([('galera_node', dict(login, login_unix_socket=node.socket, datadir=node.datadir,
                                                 recover=recover, recover_command=node.recover_command()), opts)
                            for node in nodes])
    for result in results:
        assert not result.get('failed') and not result['changed'], (result, runner.last_output[-3000:])
    return [dict(r['node'], name=node.name) for node, r in zip(nodes, results)], results


def test_fresh_data_directories_bootstrap_from_the_first_node(tmp_path):
    cluster = Cluster()
    try:
        for node in cluster.nodes:
            node.install()
        facts, _results = _facts(tmp_path, cluster.nodes)
        for f in facts:
            assert (f['server_running'], f['running'], f['uuid'], f['seqno'], f['grastate']) == \
                (False, False, None, None, {}), f
        decision = galera_bootstrap(facts)
        assert (decision['action'], decision['bootstrap'], decision['start']) == \
            ('bootstrap', 'node1', ['node2', 'node3']), decision
    finally:
        cluster.destroy()


def test_a_running_cluster_and_one_node_down(galera, tmp_path):
    (tmp_path / 'up').mkdir()
    facts, _results = _facts(tmp_path / 'up', galera.nodes)
    uuids = set(f['uuid'] for f in facts)
    assert len(uuids) == 1 and None not in uuids
    for f in facts:
        assert (f['running'], f['cluster_status'], f['local_state'], f['ready'], f['cluster_size']) == \
            (True, 'Primary', 'Synced', True, 3), f
    assert galera_bootstrap(facts)['action'] == 'none'
    galera.nodes[2].kill()
    (tmp_path / 'down').mkdir()
    facts, _results = _facts(tmp_path / 'down', galera.nodes)
    assert (facts[2]['running'], facts[2]['uuid'], facts[2]['seqno']) == (False, list(uuids)[0], -1), facts[2]
    decision = galera_bootstrap(facts)
    assert (decision['action'], decision['bootstrap'], decision['start']) == ('join', None, ['node3']), decision


def test_every_node_down_is_refused_then_recovered_from_the_most_advanced(galera, tmp_path):
    # node3 leaves first, then two more commits: node1 and node2 are ahead of it
    galera.nodes[2].kill()
    conn = galera.nodes[0].root()
    with conn.cursor() as cur:
        cur.execute('CREATE DATABASE IF NOT EXISTS galera_facts')
        cur.execute('CREATE TABLE IF NOT EXISTS galera_facts.ahead (id INT PRIMARY KEY)')
        cur.execute('INSERT INTO galera_facts.ahead VALUES (1), (2) ON DUPLICATE KEY UPDATE id = id')
        cur.execute('REPLACE INTO galera_facts.ahead VALUES (3)')
    conn.close()
    for node in galera.nodes[:2]:
        node.kill()
    (tmp_path / 'check').mkdir()
    facts, results = _facts(tmp_path / 'check', galera.nodes, recover=True, check_mode=True)
    assert all(f['recovered_seqno'] is None for f in facts)
    decision = galera_bootstrap(facts)
    assert decision['action'] == 'refuse', decision
    assert 'the cluster lost every node' in decision['msg'] and 'playbooks/galera_recover.yml' in decision['msg']
    (tmp_path / 'recover').mkdir()
    facts, _results = _facts(tmp_path / 'recover', galera.nodes, recover=True)
    seqnos = [f['recovered_seqno'] for f in facts]
    assert seqnos[2] < seqnos[0] == seqnos[1], seqnos
    choice = galera_bootstrap(facts, recovery=True)
    assert (choice['action'], choice['bootstrap'], choice['start']) == \
        ('bootstrap', 'node1', ['node2', 'node3']), choice
    # The choice brings the cluster back with every commit.
    chosen = galera.nodes[0]
    chosen.set_safe_to_bootstrap(1)
    chosen.start(bootstrap=True)
    for node in galera.nodes[1:]:
        node.start()
    conn = galera.nodes[2].root()
    with conn.cursor() as cur:
        cur.execute('SELECT COUNT(*) FROM galera_facts.ahead')
        assert cur.fetchone()[0] == 3
    conn.close()
