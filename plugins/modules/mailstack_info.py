#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mailstack_info
short_description: Report the health of a mail host - queue, sessions, replication, storage, certificates, shards
version_added: 0.1.0
description:
  - Reads, on one host, what an operator of the mail stack looks at first, and returns it as data
    (for AWX, monitoring, and C(playbooks/report.yml), which runs it everywhere and prints one
    summary).
  - C(postfix) - the queue (C(postqueue -j)) - messages per queue, bytes, the age of the oldest
    message, the most frequent reasons of deferred recipients.
  - C(dovecot) - Dovecot's processes per service (from their process titles), the users and
    connections logged in (C(doveadm who)), and on a proxy the proxied sessions
    (C(doveadm proxy list)).
  - C(database) - the local MariaDB (over its Unix socket, as the OS user) - replication state and
    lag when the server is a replica (as M(mailops.mailstack.mariadb_replica_info) reports it), the
    binary log position on a primary, and when it holds the mail database, the shards
    (C(mailbox_host)) with their users and the moves in progress.
  - C(storage) - the file system of the mail root (bytes and inodes used) and, with
    O(count_mail_bytes), the bytes, files and mailbox directories under it.
  - C(certificates) - expiry of the certificates in O(certificates).
  - A section whose service is not on the host (not installed, or installed but neither enabled
    nor running) is left out of RV(mailstack) and named in RV(skipped) with the reason. A service
    that is enabled but not running is reported (C(running=false)) and is a problem.
  - Read-only; what needs attention is listed in RV(problems).
  - No existing module reports these together; M(mailops.mailstack.mariadb_replica_info) gives the
    replication part alone.
options:
  gather:
    description:
      - The sections to read.
    type: list
    elements: str
    choices: [postfix, dovecot, database, storage, certificates]
    default: [postfix, dovecot, database, storage, certificates]
  mail_root:
    description:
      - The directory that holds the Maildirs (C(dovecot_mail_root)).
    type: path
    default: /var/vmail
  count_mail_bytes:
    description:
      - Walk the mail root to add up its files' sizes (one C(lstat) per file). Turn it off on
        stores where that takes too long; the file system's figures are read either way.
    type: bool
    default: true
  certificates:
    description:
      - Certificate files whose expiry to report (for example C(tls_cert_file)). Missing files are
        reported as problems.
    type: list
    elements: path
    default: []
  login_unix_socket:
    description:
      - The local MariaDB's socket.
    type: path
    default: /run/mysqld/mysqld.sock
  database:
    description:
      - The mail database, for the shards.
    type: str
    default: mail
  cert_warn_days:
    description:
      - A certificate that expires in fewer days is a problem.
    type: int
    default: 14
  disk_warn_percent:
    description:
      - A mail root file system with this share of its bytes or inodes used is a problem.
    type: int
    default: 90
  max_lag:
    description:
      - Seconds a replica may be behind its primary before that is a problem. Without it, any known
        lag is fine (a replica whose threads stopped, or whose lag is unknown, is a problem either way).
    type: int
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mailops.mailstack.read_only
requirements:
  - PyMySQL (for the C(database) section)
seealso:
  - module: mailops.mailstack.mariadb_replica_info
author:
  - mailstack developers (@mailops)
'''

EXAMPLES = r'''
- name: What needs attention on this host
  mailops.mailstack.mailstack_info:
    certificates: [/etc/ssl/mailstack/host.crt]
  register: health

- name: Fail when mail waits in the queue for more than an hour
  ansible.builtin.assert:
    that: (health.mailstack.postfix.oldest_age_seconds | default(0, true)) < 3600

- name: Only the queue
  mailops.mailstack.mailstack_info:
    gather: [postfix]
'''

RETURN = r'''
mailstack:
  description: The sections read, by name (only those whose service is on the host).
  returned: always
  type: dict
  contains:
    postfix:
      description:
        - C(running); when it runs, C(messages), C(bytes), C(queues) (messages per queue - maildrop,
          incoming, active, deferred, hold, corrupt), C(oldest_age_seconds) (null for an empty
          queue), C(deferred_reasons) (list of C(reason), C(recipients), the 5 most frequent).
      type: dict
      returned: when Postfix is enabled or running
    dovecot:
      description:
        - C(processes) (count per service; C(master) is Dovecot itself), C(running), C(sessions)
          (C(users), C(connections), C(by_service)) and C(proxied) (sessions a proxy passes on).
      type: dict
      returned: when Dovecot is enabled or running
    database:
      description:
        - C(role) (C(replica), C(primary) or C(galera)), C(version), C(read_only); for a Galera node C(galera)
          (C(cluster_size), C(cluster_status), C(local_state), C(ready), C(cluster_uuid) - the node's own view,
          a problem when it is not C(Synced) in the C(Primary) component); for a replica C(replication)
          (C(healthy), C(problems), C(seconds_behind_master), the threads and GTID positions, as
          M(mailops.mailstack.mariadb_replica_info) returns them); for a primary C(gtid_binlog_pos)
          and C(replicas) (connected replicas); with the mail database, C(shards) (C(hosts) - name,
          address, state, weight, users, C(moves_in) by state - and C(users_without_host)).
      type: dict
      returned: when a MariaDB server answers on the socket
    storage:
      description:
        - C(mail_root), C(file_system) (C(bytes_total), C(bytes_used), C(bytes_available),
          C(bytes_used_percent), the same for inodes), and with O(count_mail_bytes) C(mail)
          (C(bytes), C(files), C(mailboxes)).
      type: dict
      returned: when the mail root exists
    certificates:
      description: One entry per certificate - C(path), C(subject), C(not_after), C(days_left), or C(error).
      type: list
      elements: dict
      returned: when certificates are given
skipped:
  description: Sections not read, with the reason.
  returned: always
  type: dict
  sample: {postfix: postqueue is not installed}
problems:
  description: What needs attention, one sentence each; empty when nothing does.
  returned: always
  type: list
  elements: str
  sample: ['postfix: 3 deferred message(s), the oldest queued 620 s ago']
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mailops.mailstack.plugins.module_utils import info
from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import HAS_PYMYSQL, pymysql, query
from ansible_collections.mailops.mailstack.plugins.module_utils import replication

SECTIONS = ['postfix', 'dovecot', 'database', 'storage', 'certificates']


class Skip(Exception):
    """A section whose service is not on this host."""


def command(module, name, args):
    path = module.get_bin_path(name)
    if path is None:
        raise Skip('%s is not installed' % name)
    rc, out, err = module.run_command([path] + args)
    if rc != 0:
        raise RuntimeError('%s %s failed (exit %d): %s' % (name, ' '.join(args), rc, (err or out).strip()[:500]))
    return out


def service_state(module, binary, unit, running_now):
    """Whether a service that is installed runs. Skip when it is not
    installed, or installed but neither enabled nor running (a package on a
    host that does not play that part). running_now() says whether its
    processes are there, for hosts without systemd."""
    if module.get_bin_path(binary) is None:
        raise Skip('%s is not installed' % binary)
    systemctl = module.get_bin_path('systemctl')
    if systemctl is None or not os.path.isdir('/run/systemd/system'):
        if not running_now():
            raise Skip('%s is not running (and no systemd says whether it should)' % unit)
        return True
    running = module.run_command([systemctl, 'is-active', '--quiet', unit])[0] == 0
    enabled = module.run_command([systemctl, 'is-enabled', '--quiet', unit])[0] == 0
    if not running and not enabled:
        raise Skip('%s is installed but neither enabled nor running' % unit)
    return running


def postfix(module):
    def master():
        return any(t.split()[0].endswith('/postfix/sbin/master') for t in info.process_titles() if t.split())
    if not service_state(module, 'postqueue', 'postfix', master):
        return dict(running=False)
    result = info.postfix_queue(command(module, 'postqueue', ['-j']))
    result['running'] = True
    return result


def dovecot(module):
    def master():
        return 'master' in info.dovecot_processes(info.process_titles())
    running = service_state(module, 'doveadm', 'dovecot', master)
    processes = info.dovecot_processes(info.process_titles())
    result = dict(processes=processes, running=running and 'master' in processes)
    if result['running']:
        result['sessions'] = info.dovecot_sessions(command(module, 'doveadm', ['-f', 'tab', 'who']))
        rc, out, _err = module.run_command([module.get_bin_path('doveadm'), '-f', 'tab', 'proxy', 'list'])
        result['proxied'] = info.proxied_sessions(out) if rc == 0 else 0
    return result


def database(module):
    sock = module.params['login_unix_socket']
    if not os.path.exists(sock):
        raise Skip('no MariaDB socket at %s' % sock)
    if not HAS_PYMYSQL:
        raise RuntimeError('PyMySQL is required for the database section')
    try:
        conn = pymysql.connect(unix_socket=sock, charset='utf8mb4', autocommit=True, connect_timeout=10)
    except pymysql.MySQLError as e:
        raise RuntimeError('cannot connect to MariaDB at %s as %s: %s' % (sock, replication.os_user(), e))
    try:
        facts = replication.server_facts(conn)
        result = dict(version=facts.get('version'), read_only=facts.get('read_only'))
        rows = replication.fetch_slave_rows(conn)
        wsrep = dict(query(conn, "SHOW GLOBAL VARIABLES LIKE 'wsrep_on'"))
        if str(replication.to_text(wsrep.get('wsrep_on', ''))).upper() == 'ON':
            # A node of a Galera cluster: no primary, no replica.
            status = query(conn, 'SHOW GLOBAL STATUS WHERE Variable_name IN (%s)'
                           % ', '.join(['%s'] * len(info.GALERA_STATUS)), info.GALERA_STATUS)
            result.update(role='galera', galera=info.galera(
                dict((name, replication.to_text(value)) for name, value in status)))
        elif rows:
            status = replication.replica_status(rows[0], facts, rows[0].get('Connection_name', ''))
            result.update(role='replica', replication=replication.with_health(status, module.params['max_lag']))
        else:
            result.update(role='primary', gtid_binlog_pos=facts.get('gtid_binlog_pos'),
                          replicas=len(query(conn, 'SHOW SLAVE HOSTS')))
        db = module.params['database']
        tables = [t for t, in query(conn, 'SELECT table_name FROM information_schema.tables WHERE table_schema = %s '
                                          "AND table_name IN ('mailbox_host', 'mailbox', 'mailbox_move')", (db,))]
        if 'mailbox_host' in tables and 'mailbox' in tables:
            hosts = query(conn, 'SELECT name, address, state, weight FROM `%s`.mailbox_host ORDER BY name' % db)
            users = query(conn, 'SELECT mailbox_host, COUNT(*) FROM `%s`.mailbox GROUP BY mailbox_host' % db)
            moves = query(conn, "SELECT target, state, COUNT(*) FROM `%s`.mailbox_move WHERE state <> 'done' "
                                'GROUP BY target, state' % db) if 'mailbox_move' in tables else ()
            result['shards'] = info.shards(hosts, users, moves)
        return result
    finally:
        conn.close()


def storage(module):
    root = module.params['mail_root']
    if not os.path.isdir(root):
        raise Skip('no mail root at %s' % root)
    result = dict(mail_root=root, file_system=info.file_system(os.statvfs(root)))
    if module.params['count_mail_bytes']:
        result['mail'] = info.tree_usage(root)
    return result


def certificates(module):
    paths = module.params['certificates']
    if not paths:
        raise Skip('no certificates given')
    result = []
    for path in paths:
        if not os.path.exists(path):
            result.append(dict(path=path, error='no such file'))
            continue
        try:
            out = command(module, 'openssl', ['x509', '-noout', '-enddate', '-subject', '-in', path])
            result.append(info.certificate(path, out))
        except (RuntimeError, ValueError) as e:
            result.append(dict(path=path, error=str(e)))
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            gather=dict(type='list', elements='str', choices=SECTIONS, default=list(SECTIONS)),
            mail_root=dict(type='path', default='/var/vmail'),
            count_mail_bytes=dict(type='bool', default=True),
            certificates=dict(type='list', elements='path', default=[]),
            login_unix_socket=dict(type='path', default=replication.DEFAULT_SOCKET),
            database=dict(type='str', default='mail'),
            cert_warn_days=dict(type='int', default=14),
            disk_warn_percent=dict(type='int', default=90),
            max_lag=dict(type='int'),
        ),
        supports_check_mode=True,
    )
    readers = dict(postfix=postfix, dovecot=dovecot, database=database, storage=storage, certificates=certificates)
    found, skipped = {}, {}
    for name in SECTIONS:
        if name not in module.params['gather']:
            continue
        try:
            found[name] = readers[name](module)
        except Skip as e:
            skipped[name] = str(e)
        except (RuntimeError, ValueError) as e:
            module.fail_json(msg='%s: %s' % (name, e), mailstack=found, skipped=skipped)
    module.exit_json(changed=False, mailstack=found, skipped=skipped,
                     problems=info.problems(found, module.params['cert_warn_days'],
                                            module.params['disk_warn_percent']))


if __name__ == '__main__':
    main()
