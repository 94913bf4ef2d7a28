# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The mail database as a MariaDB Galera cluster: what a node's state files
say, and who may bootstrap (docs/design/no-spof-plan.md, 2.1).

Pure functions on plain data, shared by the module ``galera_node`` (which
gathers each node's facts) and the filter ``galera_bootstrap`` (which
decides from every node's facts, gathered first):

- ``parse_grastate``: ``grastate.dat`` (uuid, seqno, safe_to_bootstrap);
- ``parse_recovered``: the position ``mariadbd --wsrep-recover`` logs (or
  Debian's ``galera_recovery`` prints) for a node that crashed (seqno -1);
- ``decide``: what a converge does. A converge bootstraps only a cluster
  that never existed (no node has a history: fresh data directories, or a
  standalone primary being converted, whose data the first node holds),
  from the first node, once; it never bootstraps a cluster that exists;
  when every node of an existing cluster is down, or the running ones are
  not Primary, it refuses and names ``playbooks/galera_recover.yml``;
- ``recovery``: what that playbook does: bootstrap from the node with the
  most advanced state (highest seqno of the one history; a tie goes to
  safe_to_bootstrap 1, then the inventory's order), the others joining
  after it.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

RECOVER_PLAYBOOK = 'playbooks/galera_recover.yml'
# A node's history before it ever joined a cluster.
NO_UUID = '00000000-0000-0000-0000-000000000000'
UUID = r'[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}'
# mariadbd --wsrep-recover: "WSREP: Recovered position: <uuid>:<seqno>";
# galera_recovery: "--wsrep_start_position=<uuid>:<seqno>".
_RECOVERED = re.compile(r'(?:Recovered position:\s*|--wsrep_start_position=)(%s):(-?\d+)' % UUID)


def parse_grastate(text):
    """grastate.dat's fields: {'uuid', 'seqno', 'safe_to_bootstrap'} (the
    numbers as int; a field the file lacks is absent)."""
    state = {}
    for line in (text or '').splitlines():
        line = line.strip()
        if not line or line.startswith('#') or ':' not in line:
            continue
        key, value = [part.strip() for part in line.split(':', 1)]
        if key in ('seqno', 'safe_to_bootstrap'):
            try:
                state[key] = int(value)
            except ValueError:
                continue
        elif key in ('uuid', 'version'):
            state[key] = value
    return state


def parse_recovered(text):
    """(uuid, seqno) of the last recovered position in the text; (None,
    None) when there is none."""
    found = _RECOVERED.findall(text or '')
    if not found:
        return None, None
    return found[-1][0].lower(), int(found[-1][1])


def history(node):
    """The cluster uuid a node belongs (or belonged) to; None when it never
    joined one."""
    uuid = node.get('uuid')
    if not uuid or uuid == NO_UUID:
        return None
    return uuid


def position(node):
    """The node's last committed seqno: grastate's, or the recovered one
    when grastate says -1 (a crash, or a node still running); None when
    unknown."""
    seqno = node.get('seqno')
    if seqno is not None and seqno >= 0:
        return seqno
    recovered = node.get('recovered_seqno')
    if recovered is not None and recovered >= 0:
        return recovered
    return None


def _refusal(msg):
    return dict(action='refuse', bootstrap=None, start=[], msg=msg)


def _histories(nodes):
    """{uuid: [names]} of the nodes that have a history."""
    by_uuid = {}
    for node in nodes:
        uuid = history(node)
        if uuid:
            by_uuid.setdefault(uuid, []).append(node['name'])
    return by_uuid


def _two_histories(by_uuid):
    return _refusal('the nodes hold %d different cluster histories (%s): they are not one cluster; keep the one '
                    'to keep, empty the data directory of the others (they then join it by SST)'
                    % (len(by_uuid), '; '.join('%s: %s' % (uuid, ', '.join(names))
                                               for uuid, names in sorted(by_uuid.items()))))


def decide(nodes):
    """What a converge does with the cluster, from every node's facts
    (gathered before any node is started), in the inventory's order.

    nodes: [{'name', 'running', 'cluster_status', 'uuid', 'seqno',
    'safe_to_bootstrap'}] (galera_node's facts; running means the server
    runs as a node of a cluster: wsrep on).

    Returns {'action', 'bootstrap', 'start', 'msg'}: action is 'none' (every
    node runs in the Primary component), 'join' (the stopped nodes in start
    join it, one at a time), 'bootstrap' (a new cluster from the node named
    by bootstrap, then start) or 'refuse' (msg says why; nothing is
    started)."""
    if not nodes:
        return _refusal('no Galera node given')
    running = [n for n in nodes if n.get('running')]
    stopped = [n['name'] for n in nodes if not n.get('running')]
    primary = [n for n in running if n.get('cluster_status') == 'Primary']
    by_uuid = _histories(nodes)
    if primary:
        # The cluster runs: its uuid is the one that counts. A stopped node
        # of another history would be wiped by its SST: refuse instead.
        live = set(history(n) for n in primary)
        if len(live) > 1:
            return _two_histories(_histories(primary))
        strangers = dict((uuid, names) for uuid, names in by_uuid.items() if uuid not in live)
        if strangers:
            return _two_histories(by_uuid)
        if not stopped:
            return dict(action='none', bootstrap=None, start=[], msg='every node runs in the Primary component')
        return dict(action='join', bootstrap=None, start=stopped,
                    msg='the cluster runs on %s: %s join it, one at a time'
                    % (', '.join(n['name'] for n in primary), ', '.join(stopped)))
    if running:
        return _refusal('%s run%s but none is in the Primary component (%s): the cluster lost its quorum; '
                        'stop them (systemctl stop mariadb) and run %s (it bootstraps the most advanced node)'
                        % (', '.join(n['name'] for n in running), 's' if len(running) == 1 else '',
                           ', '.join('%s: %s' % (n['name'], n.get('cluster_status')) for n in running),
                           RECOVER_PLAYBOOK))
    if len(by_uuid) > 1:
        return _two_histories(by_uuid)
    if by_uuid:
        return _refusal('the cluster lost every node (%s all stopped, with the history %s): a converge never '
                        'bootstraps a cluster that exists; run %s (it bootstraps the most advanced node)'
                        % (', '.join(stopped), list(by_uuid)[0], RECOVER_PLAYBOOK))
    first = nodes[0]['name']
    return dict(action='bootstrap', bootstrap=first, start=stopped[1:] if stopped[0] == first else
                [n for n in stopped if n != first],
                msg='a new cluster: %s bootstraps it (the first node: it holds the data of a primary being '
                    'converted), then %s join one at a time' % (first, ', '.join(n for n in stopped if n != first)))


def recovery(nodes):
    """What playbooks/galera_recover.yml does once every node is stopped:
    bootstrap from the most advanced node of the one history, then the
    others. nodes as decide's, with 'recovered_seqno' where grastate says
    -1 (mariadbd --wsrep-recover). Returns decide's dict."""
    if not nodes:
        return _refusal('no Galera node given')
    running = [n['name'] for n in nodes if n.get('running')]
    if running:
        return _refusal('%s still run%s: the recovery starts from every node stopped'
                        % (', '.join(running), 's' if len(running) == 1 else ''))
    by_uuid = _histories(nodes)
    if len(by_uuid) > 1:
        return _two_histories(by_uuid)
    if not by_uuid:
        return _refusal('no node has a cluster history: nothing to recover (a converge bootstraps a new '
                        'cluster)')
    unknown = [n['name'] for n in nodes if history(n) and position(n) is None]
    if unknown:
        return _refusal('the position of %s is unknown (grastate.dat says seqno -1 and --wsrep-recover found '
                        'none): the most advanced node cannot be chosen' % ', '.join(unknown))
    members = [(i, n) for i, n in enumerate(nodes) if history(n)]
    # Highest seqno; a tie: safe_to_bootstrap 1 first, then the inventory's order.
    best = max(members, key=lambda m: (position(m[1]), m[1].get('safe_to_bootstrap') == 1, -m[0]))[1]
    others = [n['name'] for n in nodes if n['name'] != best['name']]
    return dict(action='bootstrap', bootstrap=best['name'], start=others,
                msg='%s is the most advanced node (seqno %d): it bootstraps, then %s join one at a time'
                % (best['name'], position(best), ', '.join(others)))
