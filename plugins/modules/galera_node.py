#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: galera_node
short_description: Report the state of one MariaDB Galera node
version_added: 0.5.0
description:
  - Reports what decides how a Galera cluster is started - whether the server runs as a node of a cluster
    (C(wsrep_on)), its component (C(wsrep_cluster_status)), its local state (C(Synced), C(Joining), ...), the
    cluster size, and from C(grastate.dat) in the data directory the cluster's uuid, the last committed seqno
    and C(safe_to_bootstrap).
  - With O(recover=true), a stopped node whose C(grastate.dat) says seqno C(-1) (it crashed, or was killed) is
    asked for its real position with O(recover_command) (Debian's C(galera_recovery), which runs
    C(mariadbd --wsrep-recover)); the result is RV(node.recovered_seqno).
  - Read-only. The filter M(mailops.mailstack.galera_bootstrap) decides from every node's RV(node) who may
    bootstrap (never twice, only from the most advanced node); the C(mail_database) role and
    C(playbooks/galera_recover.yml) use both.
  - M(community.mysql.mysql_info) reads C(wsrep_*) status variables of a running server but knows nothing of a
    stopped node's state files, which is what a bootstrap decision needs.
options:
  login_host:
    description:
      - Host of the server, reached over TCP. Ignored when O(login_unix_socket) is set.
      - When neither this nor O(login_unix_socket) is given, the node's own socket C(/run/mysqld/mysqld.sock)
        (Debian's).
    type: str
  datadir:
    description:
      - The server's data directory, which holds C(grastate.dat) (readable by root or C(mysql)).
    type: path
    default: /var/lib/mysql
  recover:
    description:
      - When the server does not run and C(grastate.dat) says seqno C(-1), run O(recover_command) to read the
        position InnoDB recovered. It starts the server's storage engine on the data directory for a few
        seconds (no client is served); it is skipped in check mode (RV(node.recovered_seqno) is then null).
    type: bool
    default: false
  recover_command:
    description:
      - The command that prints (or logs) the recovered position, C(--wsrep_start_position=UUID:SEQNO) or
        C(WSREP Recovered position UUID:SEQNO) (with colons after C(WSREP) and C(position)); its standard output
        and error are both read.
    type: list
    elements: str
    default: [galera_recovery]
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mailops.mailstack.read_only
  - mailops.mailstack.maildb
notes:
  - Run it as root (C(become)); the data directory is the C(mysql) user's, and root logs in over the socket by
    C(unix_socket) authentication.
seealso:
  - module: mailops.mailstack.mariadb_replica_info
author:
  - mailstack developers (@mailops)
'''

EXAMPLES = r'''
- name: Read this node's state
  mailops.mailstack.galera_node:
    recover: true
  become: true
  register: node

- name: Show it
  ansible.builtin.debug:
    msg: >-
      {{ node.node.cluster_status if node.node.running else 'stopped' }},
      {{ node.node.local_state }}, seqno {{ node.node.seqno }}, safe_to_bootstrap {{ node.node.safe_to_bootstrap }}
'''

RETURN = r'''
node:
  description: The node's state.
  returned: always
  type: dict
  contains:
    server_running:
      description: The server accepted the connection.
      type: bool
      sample: true
    wsrep_on:
      description: The server runs with Galera on (C(wsrep_on)); false when it is not running.
      type: bool
    running:
      description: The server runs as a node of a cluster (RV(node.server_running) and RV(node.wsrep_on)).
      type: bool
    cluster_status:
      description: C(wsrep_cluster_status) - V(Primary), V(non-Primary) or V(Disconnected); null when not
        RV(node.running).
      type: str
      sample: Primary
    local_state:
      description: C(wsrep_local_state_comment) - V(Synced), V(Joining), V(Donor/Desynced), ...; null when not
        RV(node.running).
      type: str
      sample: Synced
    ready:
      description: C(wsrep_ready) is C(ON) (the node takes queries).
      type: bool
    cluster_size:
      description: C(wsrep_cluster_size); null when not RV(node.running).
      type: int
      sample: 3
    uuid:
      description: The cluster's uuid - C(wsrep_cluster_state_uuid) while running, else C(grastate.dat)'s;
        null when the node never joined a cluster.
      type: str
    seqno:
      description: The last committed seqno - C(wsrep_last_committed) while running, else C(grastate.dat)'s
        (C(-1) after a crash); null without C(grastate.dat).
      type: int
    safe_to_bootstrap:
      description: C(grastate.dat)'s C(safe_to_bootstrap) (1 on the node that left the cluster last, cleanly);
        null without the file.
      type: int
    grastate:
      description: The fields of C(grastate.dat) (empty when there is none).
      type: dict
    recovered_uuid:
      description: The uuid of the position O(recover_command) found; null when it did not run.
      type: str
    recovered_seqno:
      description: The seqno of that position; null when it did not run or found none.
      type: int
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.mailstack.plugins.module_utils.galera import (
    NO_UUID, parse_grastate, parse_recovered,
)
from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import (
    db_error_text, mariadb_connection_spec, pymysql, require_pymysql,
)

SOCKET = '/run/mysqld/mysqld.sock'
# The server is not there: no socket, refused, unreachable.
NOT_RUNNING = (2002, 2003, 2006, 2013)
STATUS = ('wsrep_cluster_status', 'wsrep_local_state_comment', 'wsrep_ready', 'wsrep_cluster_size',
          'wsrep_cluster_state_uuid', 'wsrep_last_committed')


def server_state(module):
    """None when the server does not run, else {'wsrep_on', status...}."""
    p = module.params
    kwargs = dict(user=p['login_user'], password=p['login_password'] or '', connect_timeout=p['connect_timeout'],
                  charset='utf8mb4', autocommit=True)
    if p['login_unix_socket'] or not p['login_host']:
        kwargs['unix_socket'] = p['login_unix_socket'] or SOCKET
    else:
        kwargs.update(host=p['login_host'], port=p['login_port'])
    if kwargs['user'] is None:
        del kwargs['user']
    try:
        conn = pymysql.connect(**kwargs)
    except pymysql.err.MySQLError as e:
        if e.args and e.args[0] in NOT_RUNNING:
            return None
        module.fail_json(msg='Cannot read the Galera state: %s' % db_error_text(e))
    try:
        cur = conn.cursor()
        cur.execute("SHOW GLOBAL VARIABLES LIKE 'wsrep_on'")
        row = cur.fetchone()
        state = dict(wsrep_on=bool(row) and str(row[1]).upper() == 'ON')
        cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN (%s)" % ', '.join(['%s'] * len(STATUS)), STATUS)
        state.update((name.lower(), value) for name, value in cur.fetchall())
        return state
    except pymysql.err.MySQLError as e:
        module.fail_json(msg='Cannot read the Galera state: %s' % db_error_text(e))
    finally:
        conn.close()


def read_grastate(module):
    path = os.path.join(module.params['datadir'], 'grastate.dat')
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            return parse_grastate(f.read())
    except (IOError, OSError) as e:
        module.fail_json(msg='Cannot read %s: %s' % (path, e))


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def facts(module):
    server = server_state(module)
    grastate = read_grastate(module)
    node = dict(server_running=server is not None, wsrep_on=bool(server and server['wsrep_on']), grastate=grastate,
                recovered_uuid=None, recovered_seqno=None)
    node['running'] = node['server_running'] and node['wsrep_on']
    if node['running']:
        uuid = server.get('wsrep_cluster_state_uuid') or None
        node.update(cluster_status=server.get('wsrep_cluster_status'),
                    local_state=server.get('wsrep_local_state_comment'),
                    ready=str(server.get('wsrep_ready', '')).upper() == 'ON',
                    cluster_size=_int(server.get('wsrep_cluster_size')),
                    uuid=None if uuid == NO_UUID else uuid,
                    seqno=_int(server.get('wsrep_last_committed')))
    else:
        uuid = grastate.get('uuid')
        node.update(cluster_status=None, local_state=None, ready=False, cluster_size=None,
                    uuid=None if uuid in (None, '', NO_UUID) else uuid, seqno=grastate.get('seqno'))
    node['safe_to_bootstrap'] = grastate.get('safe_to_bootstrap')
    return node


def recover(module, node):
    """The position of a crashed node, from the recover command."""
    if module.check_mode:
        module.warn('check mode: the recovered position of this stopped node was not read (recover)')
        return
    rc, out, err = module.run_command(module.params['recover_command'])
    uuid, seqno = parse_recovered(out + '\n' + err)
    if uuid is None:
        module.fail_json(msg='%s found no recovered position (rc %d): %s'
                         % (' '.join(module.params['recover_command']), rc, (err or out)[-2000:]), node=node)
    node.update(recovered_uuid=uuid, recovered_seqno=seqno)


def main():
    spec = mariadb_connection_spec()
    spec.update(
        datadir=dict(type='path', default='/var/lib/mysql'),
        recover=dict(type='bool', default=False),
        recover_command=dict(type='list', elements='str', default=['galera_recovery']),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    require_pymysql(module)
    node = facts(module)
    if module.params['recover'] and not node['server_running'] and node['uuid'] and node['seqno'] == -1:
        recover(module, node)
    module.exit_json(changed=False, node=node)


if __name__ == '__main__':
    main()
