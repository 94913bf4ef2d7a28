# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who bootstraps a Galera cluster (module_utils/galera.py; plan 2.1): the
converge's decision and the recovery's choice as tables of nodes' facts,
and the parsers of grastate.dat and --wsrep-recover's log."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.mailops.mailstack.plugins.module_utils import galera

U1 = '81bf037d-f1e7-11f1-b224-6eebdc5db9ee'
U2 = '11111111-2222-3333-4444-555555555555'


def node(name, running=False, status=None, uuid=None, seqno=None, safe=0, recovered=None):
    facts = dict(name=name, running=running, cluster_status=status, uuid=uuid, seqno=seqno, safe_to_bootstrap=safe)
    if recovered is not None:
        facts['recovered_seqno'] = recovered
    return facts


def up(name, uuid=U1):
    return node(name, True, 'Primary', uuid, -1)


def down(name, uuid=U1, seqno=-1, safe=0, recovered=None):
    return node(name, uuid=uuid, seqno=seqno, safe=safe, recovered=recovered)


def fresh(name):
    return node(name)


DECIDE = [
    # every node runs: nothing to do
    ([up('a'), up('b'), up('c')], 'none', None, []),
    # one down: it joins, nobody bootstraps
    ([up('a'), down('b'), up('c')], 'join', None, ['b']),
    ([down('a', seqno=12, safe=1), up('b'), down('c')], 'join', None, ['a', 'c']),
    # a new cluster (fresh data directories): the first node, once
    ([fresh('a'), fresh('b'), fresh('c')], 'bootstrap', 'a', ['b', 'c']),
    # a standalone primary converted: no history either (no grastate.dat)
    ([node('a', seqno=None), fresh('b'), fresh('c')], 'bootstrap', 'a', ['b', 'c']),
    # the zero uuid is no history
    ([fresh('a'), node('b', uuid=galera.NO_UUID, seqno=-1), fresh('c')], 'bootstrap', 'a', ['b', 'c']),
    # every node down with a history: never bootstrapped by a converge, even with safe_to_bootstrap 1
    ([down('a'), down('b', seqno=40, safe=1), down('c')], 'refuse', None, []),
    ([down('a'), fresh('b'), fresh('c')], 'refuse', None, []),
    # running but no Primary component
    ([node('a', True, 'non-Primary', U1, -1), down('b'), down('c')], 'refuse', None, []),
    # two histories
    ([fresh('a'), down('b', uuid=U2), down('c')], 'refuse', None, []),
    ([up('a'), up('b'), down('c', uuid=U2)], 'refuse', None, []),
]


@pytest.mark.parametrize('nodes, action, bootstrap, start', DECIDE)
def test_decide(nodes, action, bootstrap, start):
    decision = galera.decide(nodes)
    assert (decision['action'], decision['bootstrap'], decision['start']) == (action, bootstrap, start), decision


def test_every_node_down_names_the_recovery_playbook():
    msg = galera.decide([down('a'), down('b'), down('c')])['msg']
    assert 'the cluster lost every node' in msg and 'playbooks/galera_recover.yml' in msg, msg
    msg = galera.decide([node('a', True, 'non-Primary', U1), node('b', True, 'non-Primary', U1), down('c')])['msg']
    assert 'playbooks/galera_recover.yml' in msg and 'a: non-Primary' in msg, msg


def test_two_histories_name_their_nodes():
    msg = galera.decide([down('a'), down('b', uuid=U2), down('c')])['msg']
    assert '%s: a, c' % U1 in msg and '%s: b' % U2 in msg, msg


def test_a_converge_never_bootstraps_twice():
    """After the bootstrap the first node runs Primary: the next decision
    (the idempotence run, a --limit run) starts and bootstraps nothing."""
    first = galera.decide([fresh('a'), fresh('b'), fresh('c')])
    assert first['bootstrap'] == 'a'
    assert galera.decide([up('a'), fresh('b'), fresh('c')]) == dict(
        action='join', bootstrap=None, start=['b', 'c'], msg='the cluster runs on a: b, c join it, one at a time')
    assert galera.decide([up('a'), up('b'), up('c')])['bootstrap'] is None


RECOVER = [
    # clean stops: the last to stop has the highest seqno (and safe_to_bootstrap 1)
    ([down('a', seqno=10), down('b', seqno=12, safe=1), down('c', seqno=11)], 'b'),
    # crashes: the recovered positions decide
    ([down('a', recovered=7), down('b', recovered=9), down('c', recovered=8)], 'b'),
    ([down('a', seqno=5), down('b', recovered=9), down('c', recovered=9)], 'b'),
    # a tie: safe_to_bootstrap first, then the inventory's order
    ([down('a', seqno=9), down('b', seqno=9, safe=1), down('c', seqno=9)], 'b'),
    ([down('a', recovered=9), down('b', recovered=9), down('c', recovered=9)], 'a'),
    # a fresh node (never joined) is never chosen
    ([fresh('a'), down('b', seqno=3), down('c', seqno=2)], 'b'),
]


@pytest.mark.parametrize('nodes, best', RECOVER)
def test_recovery_bootstraps_the_most_advanced_node(nodes, best):
    decision = galera.recovery(nodes)
    assert decision['action'] == 'bootstrap' and decision['bootstrap'] == best, decision
    assert decision['start'] == [n['name'] for n in nodes if n['name'] != best]


@pytest.mark.parametrize('nodes, words', [
    ([up('a'), down('b'), down('c')], 'a still runs'),
    ([down('a', seqno=3), down('b', uuid=U2, seqno=4), down('c', seqno=1)], 'different cluster histories'),
    ([down('a'), down('b', seqno=3), down('c', seqno=1)], 'the position of a is unknown'),
    ([fresh('a'), fresh('b'), fresh('c')], 'nothing to recover'),
])
def test_recovery_refusals(nodes, words):
    decision = galera.recovery(nodes)
    assert decision['action'] == 'refuse' and words in decision['msg'], decision


def test_parse_grastate():
    text = ('# GALERA saved state\nversion: 2.1\nuuid:    %s\nseqno:   -1\nsafe_to_bootstrap: 0\n' % U1)
    assert galera.parse_grastate(text) == dict(version='2.1', uuid=U1, seqno=-1, safe_to_bootstrap=0)
    assert galera.parse_grastate('') == {}


@pytest.mark.parametrize('text, found', [
    ('2026-12-07  2:40:01 0 [Note] WSREP: Recovered position: %s:8\n' % U1, (U1, 8)),
    ('WSREP: Recovered position: %s:-1\n' % U1, (U1, -1)),
    ('--wsrep_start_position=%s:42\n' % U1.upper(), (U1, 42)),
    ('[Note] InnoDB: Starting shutdown...\n', (None, None)),
])
def test_parse_recovered(text, found):
    assert galera.parse_recovered(text) == found
