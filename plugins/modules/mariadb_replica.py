#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mariadb_replica
short_description: Make a MariaDB server a GTID replica of a primary, and keep it so
version_added: 0.1.0
description:
  - Runs on the replica host. Makes the local MariaDB server a replica of O(primary_host) using
    GTID replication (C(MASTER_USE_GTID=slave_pos)), and on later runs checks that it still is.
  - "Pre-flight, before anything on the replica changes: it logs in to the replica, to the primary
    with the replication account (O(primary_user)) and, when given, with the administrative account
    (O(primary_login_user)); checks that the primary writes a binary log, has another C(server_id),
    and that the replication account holds C(REPLICATION SLAVE). Any failure stops the run with a
    message naming host, port and account (never a password)."
  - With O(create_primary_user=true) it creates the replication account on the primary (or grants it
    C(REPLICATION SLAVE)) through O(primary_login_user).
  - When the replica is empty - it holds none of O(databases) (a database without tables counts as
    absent), has no GTID position for the primary and no replication configured - it takes a
    consistent snapshot of O(databases) on the primary (C(mariadb-dump --single-transaction --gtid
    --master-data=2)), pipes it into the replica's C(mariadb) client without writing it to the
    replica's binary log, and sets C(gtid_slave_pos) to the snapshot's position. If the load fails,
    the databases are dropped again, C(gtid_slave_pos) restored, and nothing is configured.
  - A replica that already holds some of O(databases) but has no GTID position is refused, since
    there is no telling where replication should start.
  - It then configures replication (C(CHANGE MASTER TO)), starts it and waits, at most
    O(wait_timeout) seconds, until the replica has caught up with the primary's C(gtid_binlog_pos)
    as read when the wait began. An SQL or IO thread that stops with an error fails the module
    with that error (C(Last_SQL_Error), C(Last_IO_Error)); a broken replica is never reported as
    success.
  - When the settings (primary host and port, user, GTID mode, TLS settings, connect retry) are
    already as asked, both threads run and the replica has caught up, nothing is changed and the
    result says so. A changed primary (host, port or user) is reconfigured - stop, C(CHANGE MASTER),
    start - and replication continues from C(gtid_slave_pos).
  - Stopped threads are started again; a thread that had stopped with an error is started once, and
    the module fails if the error comes back.
  - O(state=stopped) stops the replication threads; O(state=absent) stops them and removes the
    connection (C(RESET SLAVE ALL)), leaving data and C(gtid_slave_pos) alone.
  - Why a module of our own - M(community.mysql.mysql_replication) runs C(CHANGE MASTER) every time
    it is asked to (it cannot tell that the replica is already configured, so it always reports a
    change), takes no snapshot, sets no GTID position, does not wait for the replica to catch up
    and does not notice a broken replica. community.mysql remains the tool for accounts on the
    replica (M(community.mysql.mysql_user)) and for one-off replication commands.
options:
  state:
    description:
      - V(started) - replication from the primary is configured and running, and the replica has
        caught up.
      - V(stopped) - the replication threads are stopped; settings are kept.
      - V(absent) - the replication connection is stopped and removed (C(RESET SLAVE ALL)).
    type: str
    choices: [started, stopped, absent]
    default: started
  create_primary_user:
    description:
      - Create O(primary_user)@O(primary_user_host) on the primary with O(primary_password) and
        C(REPLICATION SLAVE) when it is missing, and grant C(REPLICATION SLAVE) when it lacks it.
        Needs O(primary_login_user).
      - The statements (C(CREATE USER IF NOT EXISTS), C(GRANT), C(ALTER USER IF EXISTS)) go into the
        primary's binary log, so replicas get the account too and a promoted replica has it.
    type: bool
    default: false
  primary_user_host:
    description:
      - Host part of the replication account that O(create_primary_user) creates; it must match
        the address the replica connects from.
    type: str
    default: '%'
  update_password:
    description:
      - The replica cannot read its stored replication password back over SQL, so this says when
        O(primary_password) is applied to an existing set-up.
      - V(on_create) - C(MASTER_PASSWORD) is set when replication is configured or reconfigured
        for another reason, and when the IO thread fails to log in (error 1045) while
        O(primary_password) works. With O(create_primary_user), an existing account keeps its
        password, and the module fails when O(primary_password) does not log in.
      - V(always) - also compares O(primary_password) with the password the replica stores (its
        master info file, C(master.info) or C(master-<connection>.info) in the data directory, which
        the module reads when it runs as root on the replica host) and re-issues C(CHANGE MASTER)
        only when they differ; when the file cannot be read it warns and behaves like V(on_create).
        With O(create_primary_user), an existing account whose password does not log in is given
        O(primary_password) (C(ALTER USER)).
    type: str
    choices: [always, on_create]
    default: on_create
  primary_connect_retry:
    description:
      - Seconds between the IO thread's reconnection attempts (C(MASTER_CONNECT_RETRY)). When
        omitted, the server's value is kept (60 on a new connection).
    type: int
  databases:
    description:
      - The databases to copy from the primary when the replica is empty.
      - The snapshot holds only these. Replication itself applies every later write on the
        primary, so writes to other databases fail on the replica unless it filters them
        (C(replicate_do_db) in its server configuration) or they exist there.
    type: list
    elements: str
    default: [mail]
  snapshot:
    description:
      - V(auto) - load a snapshot when the replica is empty (see above).
      - V(never) - never; a replica without a GTID position then starts at the primary's oldest
        binary log, which works only when the primary still has every binary log since it was
        created.
    type: str
    choices: [auto, never]
    default: auto
  wait_timeout:
    description:
      - Seconds to wait, after starting or checking replication, until the replica has caught up.
        V(0) does not wait.
      - On timeout the module fails with the positions reached; replication keeps running.
    type: int
    default: 120
  max_lag:
    description:
      - Seconds the replica may be behind when the wait ends.
      - V(0) - caught up means C(gtid_slave_pos) has reached the primary's C(gtid_binlog_pos) read
        when the wait began.
      - Above 0 - the IO thread has received up to that position and C(Seconds_Behind_Master) is
        at most this value.
    type: int
    default: 0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mailops.mailstack.maildb
  - mailops.mailstack.maildb.replica_host
  - mailops.mailstack.mariadb_replica
  - mailops.mailstack.mariadb_replica.primary
  - mailops.mailstack.maildb.attributes
attributes:
  check_mode:
    support: full
    details: The pre-flight connections and checks run; nothing is created, loaded, configured or started.
  diff_mode:
    support: full
    details: The replication settings before and after; the password only as C(password_changed).
requirements:
  - PyMySQL on the replica host.
  - For a snapshot, C(mariadb-dump) (or C(mysqldump)) and the C(mariadb) (or C(mysql)) client on the
    replica host (Debian package C(mariadb-client)), of a release that can read the primary.
notes:
  - The primary needs binary logging (C(log_bin)) and a C(server_id) of its own; a replica that
    may be promoted also wants C(log_slave_updates). These are server settings (the
    C(mail_database) role), not the module's.
  - The snapshot is consistent for InnoDB tables (the mail schema's engine); events are not copied,
    they would run on the replica too.
  - MariaDB only; the module uses MariaDB's GTIDs and C(SHOW ALL SLAVES STATUS).
seealso:
  - module: mailops.mailstack.mariadb_replica_info
  - module: community.mysql.mysql_replication
  - module: community.mysql.mysql_user
  - name: MariaDB global transaction IDs
    description: GTIDs, C(gtid_slave_pos) and C(MASTER_USE_GTID).
    link: https://mariadb.com/kb/en/gtid/
author:
  - mailstack developers (@mailops)
'''

EXAMPLES = r'''
- name: Make this host a replica of db1 (account created, snapshot of the mail database loaded)
  mailops.mailstack.mariadb_replica:
    primary_host: 192.0.2.10
    primary_user: mail_repl
    primary_password: "{{ vault_mail_repl_password }}"
    create_primary_user: true
    primary_user_host: 192.0.2.%
    primary_login_user: root
    primary_login_password: "{{ vault_db1_root_password }}"
    databases: [mail]
    wait_timeout: 600
  become: true

- name: Keep it so (the replication account exists; no snapshot expected)
  mailops.mailstack.mariadb_replica:
    primary_host: 192.0.2.10
    primary_user: mail_repl
    primary_password: "{{ vault_mail_repl_password }}"
    snapshot: never
    max_lag: 30
  become: true

- name: Over TLS, verifying the primary's certificate
  mailops.mailstack.mariadb_replica:
    primary_host: db1.example.org
    primary_user: mail_repl
    primary_password: "{{ vault_mail_repl_password }}"
    primary_ssl: true
    primary_ssl_ca: /etc/ssl/certs/mailstack-ca.pem
    primary_ssl_verify_server_cert: true
  become: true

- name: Stop replicating and forget the primary
  mailops.mailstack.mariadb_replica:
    state: absent
  become: true
'''

RETURN = r'''
actions:
  description:
    - What was done (or, in check mode, would be done), in order. The entries are fixed words -
      C(create primary user), C(grant primary user), C(set primary user password), C(stop slave),
      C(load snapshot), C(set gtid_slave_pos), C(change master), C(start slave), C(reset slave all).
    - Empty when nothing changed.
  returned: always
  type: list
  elements: str
  sample: [create primary user, load snapshot, set gtid_slave_pos, change master, start slave]
msg:
  description: What happened, in words (which settings changed and why).
  returned: always
  type: str
  sample: "Replication from 192.0.2.10:3306 is already as requested and caught up; nothing changed."
status:
  description:
    - The replica's replication status after the run (before it, in check mode).
    - The same dict as M(mailops.mailstack.mariadb_replica_info) returns, where
      RV(mailops.mailstack.mariadb_replica_info#module:status) describes each of its keys. Here its
      C(healthy) holds the lag to O(max_lag) only with O(state=started).
  returned: when the replica could be reached
  type: dict
  sample: {configured: true, connection_name: '', healthy: true, problems: [], primary_host: 192.0.2.10,
           primary_port: 3306, primary_user: mail_repl, using_gtid: Slave_Pos, io_running: true,
           sql_running: true, seconds_behind: 0, gtid_slave_pos: 0-1-1042, gtid_io_pos: 0-1-1042,
           last_io_errno: 0, last_io_error: '', last_sql_errno: 0, last_sql_error: ''}
primary:
  description: The primary as the pre-flight check saw it.
  returned: with O(state=started), once the primary was reached
  type: dict
  contains:
    host:
      description: O(primary_host).
      type: str
    port:
      description: O(primary_port).
      type: int
    server_id:
      description: Its C(server_id).
      type: int
    version:
      description: Its version.
      type: str
    gtid_binlog_pos:
      description: Its C(gtid_binlog_pos) when the wait began (at the pre-flight check in check mode).
      type: str
  sample: {host: 192.0.2.10, port: 3306, server_id: 1, version: 10.11.6-MariaDB-0+deb12u1-log,
           gtid_binlog_pos: 0-1-1042}
snapshot:
  description: The snapshot loaded (or, in check mode, that would be).
  returned: when a snapshot was loaded or would be
  type: dict
  contains:
    databases:
      description: The databases copied.
      type: list
      elements: str
    gtid_pos:
      description: The snapshot's GTID position (null in check mode).
      type: str
    bytes:
      description: Size of the dump.
      type: int
  sample: {databases: [mail], gtid_pos: 0-1-1017, bytes: 1843210}
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import db_error_text, pymysql, require_pymysql
from ansible_collections.mailops.mailstack.plugins.module_utils.replication import (
    ER_NONEXISTING_GRANT, FATAL_IO_ERRNOS, ReplicationError, change_master_statement, check_common_params,
    connect_replica, copy_snapshot, current_settings, desired_settings, describe_primary, dump_command, fetch_slave_rows,
    find_connection, grants_refusal, gtid_behind, has_replication_privilege, load_command, merge_gtid_pos,
    needs_stored_password, open_connection, password_plan, primary_argument_spec, primary_client_options,
    primary_login_decision, primary_refusal, primary_target, read_stored_password, replica_argument_spec,
    replica_client_options, replica_status, server_facts, settings_differences, settings_view,
    snapshot_decision, started_diff, started_message, started_plan, thread_problem, with_health,
    write_option_file,
)

POLL_INTERVAL = 0.5
# MariaDB refuses longer MASTER_PASSWORD values with an error quoting them.
MAX_MASTER_PASSWORD = 96


def quote_ident(name):
    return '`%s`' % name.replace('`', '``')


def check_params(p):
    errors = check_common_params(p)
    if p['state'] == 'started':
        host = (p['primary_host'] or '').strip()
        if not host:
            errors.append('primary_host: required with state=started')
        elif host.lower() == 'localhost':
            errors.append("primary_host: 'localhost' makes the replica's IO thread connect through its own "
                          "Unix socket; use 127.0.0.1 or the primary's address")
        if not p['primary_user']:
            errors.append('primary_user: must not be empty')
        pw = p['primary_password'] or ''
        # checked here: the server's own error for these would quote the password
        if len(pw) > MAX_MASTER_PASSWORD:
            errors.append('primary_password: at most %d characters (the limit of MASTER_PASSWORD), got %d'
                          % (MAX_MASTER_PASSWORD, len(pw)))
        if '\n' in pw or '\r' in pw:
            errors.append('primary_password: must not contain a line break (the replica stores it in a '
                          'line-based file)')
    if not 1 <= p['primary_port'] <= 65535:
        errors.append('primary_port: %d is not a TCP port' % p['primary_port'])
    if p['wait_timeout'] < 0:
        errors.append('wait_timeout: must be 0 or more seconds, got %d' % p['wait_timeout'])
    if p['max_lag'] < 0:
        errors.append('max_lag: must be 0 or more seconds, got %d' % p['max_lag'])
    if p['primary_connect_retry'] is not None and p['primary_connect_retry'] < 1:
        errors.append('primary_connect_retry: must be at least 1 second, got %d' % p['primary_connect_retry'])
    seen = set()
    for i, d in enumerate(p['databases'] or []):
        if not d or len(d) > 64 or d != d.strip():
            errors.append('databases[%d]: %r is not a database name' % (i, d))
        elif d.lower() in ('mysql', 'information_schema', 'performance_schema', 'sys'):
            errors.append('databases[%d]: %r is a system database; it cannot be copied to a replica' % (i, d))
        elif d in seen:
            errors.append('databases[%d]: %r is listed twice' % (i, d))
        seen.add(d)
    if p['state'] == 'started' and p['snapshot'] == 'auto' and not p['databases']:
        errors.append('databases: must name at least one database with snapshot=auto')
    if p['create_primary_user'] and not p['primary_login_user']:
        errors.append('create_primary_user: needs primary_login_user (an account on the primary that may create '
                      'users and grant REPLICATION SLAVE)')
    if not p['primary_ssl']:
        if p['primary_ssl_ca']:
            errors.append('primary_ssl_ca: only with primary_ssl=true')
        if p['primary_ssl_verify_server_cert']:
            errors.append('primary_ssl_verify_server_cert: only with primary_ssl=true')
    return errors


class Job(object):
    """One run of the module; raises ReplicationError to fail."""

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.cn = self.p['connection_name'] or ''
        self.actions = []
        self.notes = []
        self.changed = False
        self.replica = self.admin = self.repl = None
        self.facts = self.status = self.rows = None
        self.primary = None
        self.snapshot = None
        self.diff = None
        self.msg = None

    # --- helpers ---------------------------------------------------------

    def do(self, action, note=None):
        self.actions.append(action)
        self.notes.append(note or action)

    def close(self):
        for c in (self.replica, self.admin, self.repl):
            if c is not None:
                try:
                    c.close()
                except Exception:
                    pass

    def replica_sql(self, sql, args, what):
        try:
            with self.replica.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall()
        except pymysql.err.MySQLError as e:
            raise ReplicationError('On the replica, %s failed: %s' % (what, db_error_text(e)))

    def refresh(self):
        self.facts = server_facts(self.replica)
        self.rows = fetch_slave_rows(self.replica)
        self.status = replica_status(find_connection(self.rows, self.cn), self.facts, self.cn)
        return self.status

    def connect_replica(self):
        self.replica, where, user = connect_replica(self.p)
        try:
            self.refresh()
        except pymysql.err.MySQLError as e:
            raise ReplicationError('Cannot read the replication status of the replica at %s as %r (it needs SUPER or '
                                   'SLAVE MONITOR): %s' % (where, user, db_error_text(e)))
        if not self.facts['is_mariadb']:
            raise ReplicationError('The replica at %s runs %s, not MariaDB: this module uses MariaDB\'s GTID replication'
                                   % (where, self.facts['version']))

    def connect_primary(self, user, password, option):
        try:
            return open_connection(primary_target(self.p, user, password))
        except (pymysql.err.MySQLError, OSError) as e:
            raise ReplicationError('Cannot connect to %s (%s): %s. Nothing was changed on the replica.'
                                   % (describe_primary(self.p, user), option, db_error_text(e)))

    # --- state=started ----------------------------------------------------

    def started(self):
        p = self.p
        self.connect_replica()
        st = self.status
        account_plan, pfacts = self.preflight()
        where = '%s:%d' % (p['primary_host'], p['primary_port'])
        snapshot = snapshot_decision(
            p['snapshot'], st['configured'], st['gtid_slave_pos'], pfacts['gtid_binlog_pos'], self.tables_by_db(),
            p['databases'])
        if snapshot[0]:
            self.check_snapshot_prerequisites()
        desired = desired_settings(p)
        diffs = settings_differences(current_settings(st), desired)
        stored = None
        if needs_stored_password(p['update_password'], st, diffs, account_plan):
            stored = read_stored_password(self.facts['datadir'], self.cn, st)
        pw_change, pw_reason, warning = password_plan(p['update_password'], stored, p['primary_password'], st,
                                                      diffs, account_plan)
        if warning:
            self.module.warn(warning)
        plan = started_plan(p, st, account_plan, diffs, (pw_change, pw_reason), snapshot)
        for action, note in plan['steps']:
            self.do(action, note)
        if self.module.check_mode and plan['restart_errors']:
            self.module.warn('Replication had stopped with an error (%s); the module starts it once and fails '
                             'if the error comes back.' % plan['restart_errors'])
        if snapshot[0]:
            self.snapshot = dict(databases=list(p['databases']), gtid_pos=None, bytes=None)
        self.diff = started_diff(st, desired, pw_change)
        if self.module.check_mode:
            self.changed = bool(self.actions)
            self.status = with_health(st, p['max_lag'])
            self.msg = started_message(where, self.changed, self.notes, p, None, check_mode=True)
            return
        self.apply_started(account_plan, plan, desired, diffs, snapshot[0])
        self.wait(where)
        self.msg = started_message(where, self.changed, self.notes, p, self.status['seconds_behind'])

    def preflight(self):
        """Log in to the primary and check it; returns (account plan, the primary's facts). Changes nothing."""
        p = self.p
        account_plan = []
        if p['primary_login_user']:
            self.admin = self.connect_primary(p['primary_login_user'], p['primary_login_password'], 'primary_login_user')
        if p['create_primary_user']:
            account_plan = self.inspect_account()
        if 'create primary user' not in account_plan:
            try:
                self.repl = open_connection(primary_target(p, p['primary_user'], p['primary_password']))
            except (pymysql.err.MySQLError, OSError) as e:
                errno = getattr(e, 'args', [None])[0]
                account_plan.append(primary_login_decision(p, errno, db_error_text(e)))
        pfacts = server_facts(self.repl or self.admin)
        self.primary = dict(host=p['primary_host'], port=p['primary_port'], server_id=pfacts['server_id'],
                            version=pfacts['version'], gtid_binlog_pos=pfacts['gtid_binlog_pos'])
        where = '%s:%d' % (p['primary_host'], p['primary_port'])
        refusal = primary_refusal(pfacts, self.facts['server_id'], where)
        if refusal:
            raise ReplicationError(refusal)
        if self.repl is not None and not p['create_primary_user']:
            with self.repl.cursor() as cur:
                cur.execute('SHOW GRANTS')
                grants = [r[0] for r in cur.fetchall()]
            refusal = grants_refusal(grants, p['primary_user'], where)
            if refusal:
                raise ReplicationError(refusal)
        return account_plan, pfacts

    def apply_started(self, account_plan, plan, desired, diffs, snapshot):
        """Carry out the plan: the primary first, then the replica."""
        p = self.p
        account_id = (p['primary_user'], p['primary_user_host'])
        self.apply_account(account_plan, account_id)
        if self.repl is None:
            try:
                self.repl = open_connection(primary_target(p, p['primary_user'], p['primary_password']))
            except (pymysql.err.MySQLError, OSError) as e:
                raise ReplicationError('The replication account %r@%r was set up on the primary, but %s fails: %s '
                                       '(does primary_user_host cover the replica\'s address?). Nothing was changed on '
                                       'the replica.' % (account_id + (describe_primary(p, p['primary_user']),
                                                                       db_error_text(e))))
        fresh = not self.status['configured']
        if plan['stop']:
            self.replica_sql('STOP SLAVE %s', (self.cn,), 'STOP SLAVE')
            self.changed = True
        restore = None
        if snapshot:
            restore = self.load_snapshot()
            self.changed = True
        try:
            if plan['configure']:
                sql, args = change_master_statement(self.cn, desired, diffs, p['primary_password'])
                self.replica_sql(sql, args, 'CHANGE MASTER')
                self.changed = True
            if plan['start']:
                self.replica_sql('START SLAVE %s', (self.cn,), 'START SLAVE')
                self.changed = True
        except ReplicationError as e:
            if fresh:
                undone = self.undo_fresh(restore)
                raise ReplicationError('%s %s' % (e.msg, undone))
            raise

    def tables_by_db(self):
        rows = self.replica_sql(
            'SELECT table_schema, COUNT(*) FROM information_schema.tables WHERE table_schema IN (%s) '
            'GROUP BY table_schema' % ', '.join(['%s'] * len(self.p['databases'])),
            tuple(self.p['databases']), 'reading its databases') if self.p['databases'] else ()
        return dict((r[0], int(r[1])) for r in rows)

    def inspect_account(self):
        p = self.p
        try:
            with self.admin.cursor() as cur:
                cur.execute('SHOW GRANTS FOR %s@%s', (p['primary_user'], p['primary_user_host']))
                grants = [r[0] for r in cur.fetchall()]
        except pymysql.err.MySQLError as e:
            if e.args and e.args[0] == ER_NONEXISTING_GRANT:
                return ['create primary user']
            raise ReplicationError('Cannot read the grants of %r@%r on the primary as %r (primary_login_user): %s. '
                                   'Nothing was changed.' % (p['primary_user'], p['primary_user_host'],
                                                             p['primary_login_user'], db_error_text(e)))
        return [] if has_replication_privilege(grants) else ['grant primary user']

    def apply_account(self, plan, account_id):
        if not plan:
            return
        p = self.p
        statements = []
        if 'create primary user' in plan:
            statements.append(('CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s', account_id + (p['primary_password'],)))
        if 'set primary user password' in plan:
            statements.append(('ALTER USER IF EXISTS %s@%s IDENTIFIED BY %s', account_id + (p['primary_password'],)))
        if 'create primary user' in plan or 'grant primary user' in plan:
            statements.append(('GRANT REPLICATION SLAVE ON *.* TO %s@%s', account_id))
        try:
            with self.admin.cursor() as cur:
                for sql, args in statements:
                    cur.execute(sql, args)
                    self.changed = True
        except pymysql.err.MySQLError as e:
            raise ReplicationError('Setting up the replication account %r@%r on the primary as %r (primary_login_user) '
                                   'failed: %s. Nothing was changed on the replica.'
                                   % (account_id + (p['primary_login_user'], db_error_text(e))))

    def check_snapshot_prerequisites(self):
        p = self.p
        dbs = ', '.join(p['databases'])
        if self.admin is None:
            raise ReplicationError(
                'The replica holds none of %s and has no GTID position, so it needs a snapshot of the primary: give '
                'primary_login_user and primary_login_password (an account on the primary that may dump %s), or set '
                'snapshot=never. Nothing was changed.' % (dbs, dbs))
        with self.admin.cursor() as cur:
            cur.execute('SELECT schema_name FROM information_schema.schemata WHERE schema_name IN (%s)'
                        % ', '.join(['%s'] * len(p['databases'])), tuple(p['databases']))
            found = set(r[0] for r in cur.fetchall())
        missing = [d for d in p['databases'] if d not in found]
        if missing:
            raise ReplicationError('databases: %s not found on the primary %s:%d (as %r); nothing to take a snapshot '
                                   'of. Nothing was changed.' % (', '.join(missing), p['primary_host'],
                                                                 p['primary_port'], p['primary_login_user']))
        self.dump_bin = self.module.get_bin_path('mariadb-dump') or self.module.get_bin_path('mysqldump')
        self.client_bin = self.module.get_bin_path('mariadb') or self.module.get_bin_path('mysql')
        if not (self.dump_bin and self.client_bin):
            raise ReplicationError('Loading a snapshot needs mariadb-dump and the mariadb client on the replica host '
                                   '(Debian package mariadb-client). Nothing was changed.')
        running = [r.get('Connection_name') or "''" for r in self.rows
                   if (r.get('Connection_name') or '').lower() != self.cn.lower()
                   and (r.get('Slave_IO_Running') != 'No' or r.get('Slave_SQL_Running') != 'No')]
        if running:
            raise ReplicationError('Loading a snapshot sets gtid_slave_pos, which needs every replication connection '
                                   'stopped; these run: %s. Nothing was changed.' % ', '.join(running))

    def load_snapshot(self):
        """Copy the databases; returns what undo_fresh needs to put the replica back."""
        p = self.p
        rows = self.replica_sql(
            'SELECT schema_name, default_character_set_name, default_collation_name FROM information_schema.schemata '
            'WHERE schema_name IN (%s)' % ', '.join(['%s'] * len(p['databases'])), tuple(p['databases']),
            'reading its databases')
        restore = dict(existing=dict((r[0], (r[1], r[2])) for r in rows),
                       slave_pos=server_facts(self.replica)['gtid_slave_pos'])
        tmpdir = self.module.tmpdir
        dump_opts = write_option_file(primary_client_options(p), tmpdir)
        try:
            load_opts = write_option_file(replica_client_options(p), tmpdir)
            try:
                position, error, copied = copy_snapshot(dump_command(self.dump_bin, dump_opts, p['databases']),
                                                        load_command(self.client_bin, load_opts))
            finally:
                self.module.cleanup(load_opts)
        finally:
            self.module.cleanup(dump_opts)
        self.snapshot.update(gtid_pos=position, bytes=copied)
        if error:
            undone = self.undo_snapshot(restore)
            raise ReplicationError('Loading the snapshot of %s from the primary failed: %s. %s'
                                   % (', '.join(p['databases']), error, undone))
        new_pos = merge_gtid_pos(restore['slave_pos'], position)
        try:
            with self.replica.cursor() as cur:
                cur.execute('SET GLOBAL gtid_slave_pos = %s', (new_pos,))
        except pymysql.err.MySQLError as e:
            undone = self.undo_snapshot(restore)
            raise ReplicationError('Setting gtid_slave_pos to %s after loading the snapshot failed: %s. %s'
                                   % (new_pos, db_error_text(e), undone))
        i = self.actions.index('set gtid_slave_pos')
        self.notes[i] = 'set gtid_slave_pos to %s (the snapshot\'s position)' % new_pos
        return restore

    def undo_snapshot(self, restore):
        """Drop what the snapshot loaded (those databases held no table before) and restore gtid_slave_pos."""
        problems = []
        try:
            with self.replica.cursor() as cur:
                cur.execute('SET SESSION sql_log_bin = 0')
                for d in self.p['databases']:
                    cur.execute('DROP DATABASE IF EXISTS %s' % quote_ident(d))
                    if d in restore['existing']:
                        cs, coll = restore['existing'][d]
                        cur.execute('CREATE DATABASE %s CHARACTER SET %s COLLATE %s' % (quote_ident(d), cs, coll))
                cur.execute('SET GLOBAL gtid_slave_pos = %s', (restore['slave_pos'],))
                cur.execute('SET SESSION sql_log_bin = 1')
        except pymysql.err.MySQLError as e:
            problems.append(db_error_text(e))
        if problems:
            return ('Putting the replica back failed too (%s): check the databases %s and gtid_slave_pos there.'
                    % ('; '.join(problems), ', '.join(self.p['databases'])))
        return ('The replica was put back as it was: the loaded databases were dropped, gtid_slave_pos restored, '
                'and no replication was configured.')

    def undo_fresh(self, restore):
        """After a failed CHANGE MASTER / START SLAVE of a new connection: leave nothing half-configured."""
        try:
            with self.replica.cursor() as cur:
                try:
                    cur.execute('STOP SLAVE %s', (self.cn,))
                except pymysql.err.MySQLError:
                    pass
                if find_connection(fetch_slave_rows(self.replica), self.cn) is not None:
                    cur.execute('RESET SLAVE %s ALL', (self.cn,))
        except pymysql.err.MySQLError as e:
            return 'Removing the half-made replication connection failed too: %s.' % db_error_text(e)
        if restore is not None:
            return self.undo_snapshot(restore)
        return 'No replication was left configured.'

    def wait(self, where):
        p = self.p
        try:
            self.repl.ping(reconnect=True)
            target = server_facts(self.repl)['gtid_binlog_pos']
        except pymysql.err.MySQLError as e:
            raise ReplicationError('Cannot read the primary\'s position from %s: %s'
                                   % (describe_primary(p, p['primary_user']), db_error_text(e)))
        self.primary['gtid_binlog_pos'] = target
        deadline = time.time() + p['wait_timeout']
        while True:
            st = self.refresh()
            if st['sql_thread'] == 'No' and st['last_sql_errno']:
                raise ReplicationError(
                    'Replication from %s is broken: %s. Repair the replica\'s data (for example the conflicting '
                    'row), then run again: the module starts the stopped thread again.' % (where, thread_problem(st, 'sql')))
            io_fatal = st['io_thread'] == 'No' or (st['io_thread'] == 'Connecting' and st['last_io_errno'] in FATAL_IO_ERRNOS)
            if st['last_io_errno'] and io_fatal:
                raise ReplicationError(
                    'Replication from %s is broken: %s. Check the primary (its binary logs) and the replication '
                    'account, then run again.' % (where, thread_problem(st, 'io')))
            if st['io_thread'] == 'No' and st['sql_thread'] == 'No':
                raise ReplicationError('Replication from %s was stopped while the module waited for it.' % where)
            if p['wait_timeout'] == 0:
                return
            if st['io_running'] and st['sql_running']:
                if p['max_lag'] == 0:
                    if not gtid_behind(st['gtid_slave_pos'], target):
                        return
                elif (not gtid_behind(st['gtid_io_pos'], target) and st['seconds_behind'] is not None
                      and st['seconds_behind'] <= p['max_lag']):
                    return
            if time.time() >= deadline:
                behind = gtid_behind(st['gtid_slave_pos'], target)
                problems = [x for x in (thread_problem(st, 'io'), thread_problem(st, 'sql')) if x]
                raise ReplicationError(
                    'Replication from %s did not catch up within %d s (wait_timeout): %s. It keeps running; run again '
                    'to wait longer.' % (where, p['wait_timeout'], '; '.join(
                        problems + behind + ['Seconds_Behind_Master %s (max_lag %d)' % (st['seconds_behind'], p['max_lag'])])))
            time.sleep(POLL_INTERVAL)

    # --- state=stopped / absent ----------------------------------------------

    def stop_or_remove(self):
        self.connect_replica()
        st = self.status
        state = self.p['state']
        before = settings_view(st)
        if not st['configured']:
            self.diff = dict(before={}, after={})
            self.msg = 'No replication connection %r is configured; nothing to do.' % self.cn
            return
        threads_on = st['io_thread'] != 'No' or st['sql_thread'] != 'No'
        if threads_on:
            self.do('stop slave')
        if state == 'absent':
            self.do('reset slave all')
            after = {}
        else:
            after = dict(before, running=False)
        self.diff = dict(before=before, after=after)
        where = '%s:%s' % (st['primary_host'], st['primary_port'])
        if self.module.check_mode:
            self.changed = bool(self.actions)
            self.msg = ('Check mode: would %s replication from %s.' % (' and '.join(self.actions), where)
                        if self.actions else 'Replication from %s is already stopped; nothing would change.' % where)
            return
        if threads_on:
            self.replica_sql('STOP SLAVE %s', (self.cn,), 'STOP SLAVE')
            self.changed = True
        if state == 'absent':
            self.replica_sql('RESET SLAVE %s ALL', (self.cn,), 'RESET SLAVE ALL')
            self.changed = True
        self.refresh()
        if self.changed:
            self.msg = 'Replication from %s: %s.' % (where, ', '.join(self.actions))
        else:
            self.msg = 'Replication from %s is already stopped; nothing changed.' % where

    # --- result ------------------------------------------------------------

    def result(self):
        res = dict(changed=self.changed, actions=self.actions, msg=self.msg or '')
        if self.status is not None:
            res['status'] = with_health(self.status, self.p['max_lag'] if self.p['state'] == 'started' else None)
        if self.primary is not None:
            res['primary'] = self.primary
        if self.snapshot is not None:
            res['snapshot'] = self.snapshot
        if self.module._diff and self.diff is not None:
            res['diff'] = self.diff
        return res


def main():
    argument_spec = replica_argument_spec()
    argument_spec.update(primary_argument_spec())
    argument_spec.update(
        state=dict(type='str', default='started', choices=['started', 'stopped', 'absent']),
        create_primary_user=dict(type='bool', default=False),
        primary_user_host=dict(type='str', default='%'),
        update_password=dict(type='str', default='on_create', choices=['always', 'on_create'], no_log=False),
        primary_connect_retry=dict(type='int'),
        databases=dict(type='list', elements='str', default=['mail']),
        snapshot=dict(type='str', default='auto', choices=['auto', 'never']),
        wait_timeout=dict(type='int', default=120),
        max_lag=dict(type='int', default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('state', 'started', ('primary_host', 'primary_password'))])
    errors = check_params(module.params)
    if errors:
        module.fail_json(msg='Invalid options, nothing was changed: %s' % '; '.join(errors), changed=False)
    require_pymysql(module)
    job = Job(module)
    try:
        if module.params['state'] == 'started':
            job.started()
        else:
            job.stop_or_remove()
    except ReplicationError as e:
        res = job.result()
        res.update(e.extra)
        res['msg'] = e.msg
        job.close()
        module.fail_json(**res)
    except pymysql.err.MySQLError as e:
        res = job.result()
        res['msg'] = 'Database error: %s' % db_error_text(e)
        job.close()
        module.fail_json(**res)
    job.close()
    module.exit_json(**job.result())


if __name__ == '__main__':
    main()
