#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mariadb_replica_info
short_description: Report the health of a MariaDB replica
version_added: 0.1.0
description:
  - Reads the replication status of a MariaDB replica (C(SHOW ALL SLAVES STATUS) and the GTID
    variables) and reports the IO and SQL threads, the lag, the GTID positions and the last errors,
    with a verdict, RV(healthy), and the reasons when it is not.
  - Read-only. With O(fail_on_unhealthy=true) an unhealthy replica fails the task, for monitoring
    playbooks and for checks after a change.
  - The replica is healthy when the replication connection exists, both threads run (the IO thread
    connected, C(Slave_IO_Running=Yes)), the lag (C(Seconds_Behind_Master)) is known and, with
    O(max_lag), at most that.
  - M(community.mysql.mysql_replication) with C(mode=getreplica) returns the raw status but no
    verdict; M(mailops.mailstack.mariadb_replica) returns the same status as this module.
options:
  max_lag:
    description:
      - Seconds the replica may be behind and still count as healthy. When omitted, any known lag
        counts as healthy.
    type: int
  fail_on_unhealthy:
    description:
      - Fail the task when the replica is not healthy, with the problems in the message.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mailops.mailstack.read_only
  - mailops.mailstack.maildb
  - mailops.mailstack.maildb.replica_host
  - mailops.mailstack.mariadb_replica
seealso:
  - module: mailops.mailstack.mariadb_replica
author:
  - mailstack developers (@mailops)
'''

EXAMPLES = r'''
- name: Read the replica's health
  mailops.mailstack.mariadb_replica_info:
  become: true
  register: replica

- name: Show it
  ansible.builtin.debug:
    msg: >-
      {{ 'healthy' if replica.healthy else replica.status.problems | join('; ') }},
      {{ replica.status.seconds_behind }} s behind, at {{ replica.status.gtid_slave_pos }}

- name: Fail when the replica is broken or more than a minute behind
  mailops.mailstack.mariadb_replica_info:
    max_lag: 60
    fail_on_unhealthy: true
  become: true
'''

RETURN = r'''
healthy:
  description: Whether the replica is healthy (the same as RV(status.healthy)).
  returned: always
  type: bool
  sample: true
status:
  description: The replication status.
  returned: always
  type: dict
  contains:
    configured:
      description: Whether the replication connection exists.
      type: bool
    connection_name:
      description: The replication connection.
      type: str
    healthy:
      description: Both threads run and the lag is known and within O(max_lag).
      type: bool
    problems:
      description: Why the replica is not healthy; empty when it is.
      type: list
      elements: str
    primary_host:
      description: C(Master_Host).
      type: str
    primary_port:
      description: C(Master_Port).
      type: int
    primary_user:
      description: C(Master_User).
      type: str
    primary_server_id:
      description: C(server_id) of the primary, once the IO thread has connected.
      type: int
    using_gtid:
      description: C(Using_Gtid) - V(Slave_Pos), V(Current_Pos) or V(No).
      type: str
    io_running:
      description: Whether the IO thread runs and is connected (C(Slave_IO_Running=Yes)).
      type: bool
    io_thread:
      description: C(Slave_IO_Running) - V(Yes), V(Connecting) or V(No).
      type: str
    sql_running:
      description: Whether the SQL thread runs (C(Slave_SQL_Running=Yes)).
      type: bool
    sql_thread:
      description: C(Slave_SQL_Running) - V(Yes) or V(No).
      type: str
    io_state:
      description: C(Slave_IO_State).
      type: str
    sql_state:
      description: C(Slave_SQL_Running_State).
      type: str
    seconds_behind:
      description: C(Seconds_Behind_Master); null while a thread is stopped.
      type: int
    sql_delay:
      description: C(SQL_Delay).
      type: int
    gtid_slave_pos:
      description: Position of the last transaction applied from a primary.
      type: str
    gtid_io_pos:
      description: C(Gtid_IO_Pos), position of the last transaction received.
      type: str
    gtid_current_pos:
      description: C(gtid_current_pos) of the replica.
      type: str
    gtid_binlog_pos:
      description: C(gtid_binlog_pos) of the replica (its own binary log).
      type: str
    server_id:
      description: C(server_id) of the replica.
      type: int
    read_only:
      description: C(read_only) of the replica.
      type: bool
    ssl:
      description: C(Master_SSL_Allowed).
      type: bool
    ssl_ca:
      description: C(Master_SSL_CA_File).
      type: str
    ssl_verify_server_cert:
      description: C(Master_SSL_Verify_Server_Cert).
      type: bool
    connect_retry:
      description: C(Connect_Retry).
      type: int
    last_io_errno:
      description: C(Last_IO_Errno).
      type: int
    last_io_error:
      description: C(Last_IO_Error).
      type: str
    last_sql_errno:
      description: C(Last_SQL_Errno).
      type: int
    last_sql_error:
      description: C(Last_SQL_Error).
      type: str
  sample: {configured: true, connection_name: '', healthy: false,
           problems: ["the SQL thread is not running, error 1062: Could not execute Write_rows_v1 event ..."],
           primary_host: 192.0.2.10, primary_port: 3306, primary_user: mail_repl, using_gtid: Slave_Pos,
           io_running: true, io_thread: 'Yes', sql_running: false, sql_thread: 'No', seconds_behind: null,
           gtid_slave_pos: 0-1-1041, gtid_io_pos: 0-1-1042, last_io_errno: 0, last_io_error: '',
           last_sql_errno: 1062, last_sql_error: "Could not execute Write_rows_v1 event ..."}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import db_error_text, pymysql, require_pymysql
from ansible_collections.mailops.mailstack.plugins.module_utils.replication import (
    ReplicationError, check_common_params, connect_replica, fetch_slave_rows, find_connection,
    replica_argument_spec, replica_status, server_facts, with_health,
)


def main():
    argument_spec = replica_argument_spec()
    argument_spec.update(
        max_lag=dict(type='int'),
        fail_on_unhealthy=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    errors = check_common_params(p)
    if p['max_lag'] is not None and p['max_lag'] < 0:
        errors.append('max_lag: must be 0 or more seconds, got %d' % p['max_lag'])
    if errors:
        module.fail_json(msg='Invalid options: %s' % '; '.join(errors))
    require_pymysql(module)

    try:
        conn, where, user = connect_replica(p)
    except ReplicationError as e:
        module.fail_json(msg=e.msg)
    try:
        facts = server_facts(conn)
        row = find_connection(fetch_slave_rows(conn), p['connection_name'])
    except pymysql.err.MySQLError as e:
        module.fail_json(msg='Cannot read the replication status at %s as %r (it needs SUPER or SLAVE MONITOR): %s'
                         % (where, user, db_error_text(e)))
    finally:
        conn.close()
    status = with_health(replica_status(row, facts, p['connection_name']), p['max_lag'])
    result = dict(changed=False, healthy=status['healthy'], status=status)
    if p['fail_on_unhealthy'] and not status['healthy']:
        module.fail_json(msg='The replica at %s is not healthy: %s' % (where, '; '.join(status['problems'])), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
