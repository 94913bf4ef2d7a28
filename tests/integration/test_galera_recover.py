# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/galera_recover.yml's choice (its first play, tag choose) on the
harness's real cluster (mailstack_testlib.galera), the nodes as the
inventory's mail_db hosts (local connections, galera_node's options by
mailstack_galera_node_options):

- node1 killed, a commit through node2 and node3, node3 killed: node2 runs
  alone, non-Primary: the recovery refuses (node2 still runs);
- node2 killed too: every node crashed (seqno -1), the recovered positions
  put node2 and node3 ahead of node1: node2 is chosen (the tie with node3
  goes to the inventory's order), never node1. The harness then brings the
  cluster back from it (heal: the same choice) with the commit.

Red (seen): the choice forced to the first node in the playbook (the
filter's recovery off, a converge's decision): the playbook refuses every
node down instead of choosing.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest

from mailstack_testlib.runner import REPO, ansible_env, playbook

# One worker runs every test of the Galera cluster (scripts/test.sh: --dist loadgroup): one cluster per session.
pytestmark = pytest.mark.xdist_group('galera')


def _run(cluster, tmp_path):
    hosts = {}
    for node in cluster.nodes:
        hosts[node.name] = dict(ansible_connection='local', ansible_python_interpreter=sys.executable,
                                mailstack_galera_datadir=node.datadir,
                                mailstack_galera_node_options=dict(login_unix_socket=node.socket, login_user='root',
                                                                   datadir=node.datadir,
                                                                   recover_command=node.recover_command()))
    inventory = tmp_path / 'inventory.json'
    inventory.write_text(json.dumps({'all': {'children': {'mail_db': {'hosts': hosts}}}}))
    cfg = tmp_path / 'ansible.cfg'
    cfg.write_text('[defaults]\nretry_files_enabled = False\nstdout_callback = default\n')
    env = ansible_env(config=cfg, ANSIBLE_HOME=str(tmp_path / 'home'), ANSIBLE_LOCAL_TEMP=str(tmp_path / 'tmp'))
    return playbook('-i', str(inventory), os.path.join(REPO, 'playbooks', 'galera_recover.yml'), '--tags', 'choose',
                    env=env, cwd=str(tmp_path), stderr=subprocess.STDOUT, timeout=300)


def test_the_recovery_chooses_the_most_advanced_node(galera, tmp_path):
    first, second, third = galera.nodes
    first.kill()
    galera.wait_size(second, 2)
    conn = second.root()
    with conn.cursor() as cur:
        cur.execute('CREATE DATABASE IF NOT EXISTS galera_facts')
        cur.execute('CREATE TABLE IF NOT EXISTS galera_facts.recovered (id INT PRIMARY KEY)')
        cur.execute('REPLACE INTO galera_facts.recovered VALUES (7)')
    conn.close()
    third.kill()
    (tmp_path / 'running').mkdir()
    run = _run(galera, tmp_path / 'running')
    assert run.returncode != 0 and 'node2 still runs: the recovery starts from every node stopped' in run.stdout, \
        run.stdout[-3000:]
    second.kill()
    (tmp_path / 'down').mkdir()
    run = _run(galera, tmp_path / 'down')
    assert run.returncode == 0, run.stdout[-3000:]
    assert 'node2 is the most advanced node' in run.stdout and 'then node1, node3 join one at a time' in run.stdout, \
        run.stdout[-3000:]
    galera.heal()
    conn = first.root()
    with conn.cursor() as cur:
        cur.execute('SELECT id FROM galera_facts.recovered')
        assert cur.fetchone()[0] == 7
    conn.close()
