# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mariadb_replica and mariadb_replica_info run through ansible-playbook against
three throw-away MariaDB servers on 127.0.0.1: ``primary`` (server_id 1),
``primary2`` (server_id 3, itself a GTID replica of ``primary`` with
log_slave_updates, the "other primary" a failover would switch to) and
``replica`` (server_id 2), the host the modules manage.

The servers live for this module's tests. Each test brings the replica to the
state it needs (helpers below), so the tests do not depend on their order.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import importlib.util
import os
import subprocess
import time

import pytest

# The classes of this directory's conftest.py (pytest imports conftest files
# under a name other modules cannot rely on).
_spec = importlib.util.spec_from_file_location(
    'mailstack_integration_conftest', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'conftest.py'))
base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(base)
pymysql = base.pymysql

REPL_PW = 'Repl-S3cret-pw#1 "q"'
REPL2_PW = 'Sec0nd-Repl-secret'
ADMIN_USER = 'repladmin'
ADMIN_PW = 'Adm1n-S3cret-for-dumps'
WRONG_PW = 'Wr0ng-Guess-not-it'
# distinctive parts of the passwords (output may show them JSON-escaped)
SECRETS = ('Repl-S3cret', 'Sec0nd-Repl', 'Adm1n-S3cret', 'Wr0ng-Guess')


class ReplServer(base.MariaDB):
    """conftest's MariaDB with a server_id and a binary log, without the mail accounts."""

    def __init__(self, server_id, extra_args=()):
        super(ReplServer, self).__init__()
        self.server_id = server_id
        self.extra_args = list(extra_args)
        self.installer = None
        # a private tmpdir: several servers (and other test runs) bootstrap at once
        self.tmpdir = os.path.join(self.tmp, 'tmp')

    def install(self):
        os.mkdir(self.tmpdir)
        with open(os.path.join(self.tmp, 'install.log'), 'w') as log:
            self.installer = subprocess.Popen(
                [self.install_db, '--no-defaults', '--datadir=' + self.datadir, '--tmpdir=' + self.tmpdir,
                 '--auth-root-authentication-method=normal', '--skip-test-db', '--skip-name-resolve']
                + self._user_args(), stdout=log, stderr=subprocess.STDOUT)

    def launch(self):
        if self.installer.wait() != 0:
            with open(os.path.join(self.tmp, 'install.log')) as f:
                self._fail('mariadb-install-db failed:\n' + f.read()[-3000:])
        cmd = [self.mariadbd, '--no-defaults', '--datadir=' + self.datadir, '--tmpdir=' + self.tmpdir,
               '--socket=' + self.socket,
               '--port=%d' % self.port, '--bind-address=127.0.0.1', '--skip-networking=0',
               '--pid-file=' + os.path.join(self.tmp, 'mysqld.pid'), '--log-error=' + self.log,
               '--skip-name-resolve', '--innodb-buffer-pool-size=32M', '--innodb-log-file-size=16M',
               '--innodb-flush-log-at-trx-commit=2', '--sync-binlog=0', '--max-connections=40',
               '--performance-schema=0', '--character-set-server=utf8mb4', '--collation-server=utf8mb4_unicode_ci',
               '--server-id=%d' % self.server_id, '--log-bin=' + os.path.join(self.datadir, 'binlog'),
               '--binlog-format=ROW'] + self.extra_args + self._user_args()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self):
        deadline = time.time() + 90
        while True:
            if self.proc.poll() is not None:
                self._fail('mariadbd exited with %s' % self.proc.returncode)
            try:
                pymysql.connect(unix_socket=self.socket, user='root', password='', connect_timeout=2).close()
                return
            except pymysql.err.MySQLError:
                if time.time() > deadline:
                    self._fail('mariadbd did not accept connections within 90 s')
                time.sleep(0.2)

    def sql(self, statement, args=None, log_bin=True):
        conn = self.root()
        try:
            with conn.cursor() as cur:
                if not log_bin:
                    cur.execute('SET SESSION sql_log_bin = 0')
                cur.execute(statement, args)
                return cur.fetchall()
        finally:
            conn.close()

    def scalar(self, statement, args=None):
        rows = self.sql(statement, args)
        return rows[0][0] if rows else None

    def slave(self, name=''):
        conn = self.root()
        try:
            with conn.cursor(pymysql.cursors.DictCursor) as cur:
                cur.execute('SHOW ALL SLAVES STATUS')
                rows = [r for r in cur.fetchall() if r['Connection_name'].lower() == name]
            return rows[0] if rows else None
        finally:
            conn.close()

    def login_args(self, socket_path=False):
        # what base.Runner merges into every task: the replica login
        return dict(login_unix_socket=self.socket, login_user='root', connect_timeout=5)


class Cluster(object):
    def __init__(self):
        self.primary = ReplServer(1)
        self.primary2 = ReplServer(3, ['--log-slave-updates'])
        self.replica = ReplServer(2, ['--log-slave-updates'])
        self.servers = (self.primary, self.primary2, self.replica)

    def start(self):
        for s in self.servers:
            s.install()
        for s in self.servers:
            s.launch()
        for s in self.servers:
            s.wait_ready()
        for s in (self.primary, self.primary2):
            # the administrative account the module dumps with (not in the binary log)
            s.sql("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s", (ADMIN_USER, ADMIN_PW), log_bin=False)
            s.sql("GRANT ALL ON *.* TO %s@'127.0.0.1' WITH GRANT OPTION", (ADMIN_USER,), log_bin=False)
        self.primary.sql("CREATE USER 'chain'@'127.0.0.1' IDENTIFIED BY 'chain-pw'", log_bin=False)
        self.primary.sql("GRANT REPLICATION SLAVE ON *.* TO 'chain'@'127.0.0.1'", log_bin=False)
        self.primary.sql('CREATE DATABASE mail')
        self.primary.sql('CREATE TABLE mail.msg (id INT PRIMARY KEY, body VARCHAR(64)) ENGINE=InnoDB')
        self.primary.sql("INSERT INTO mail.msg VALUES (1, 'before the snapshot'), (2, 'also before')")
        # primary2 follows primary from its first binary log
        self.primary2.sql("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='chain', "
                          "MASTER_PASSWORD='chain-pw', MASTER_USE_GTID=slave_pos" % self.primary.port)
        self.primary2.sql('START SLAVE')

    def stop(self):
        for s in self.servers:
            s.stop()

    def args(self, server=None, **kw):
        """mariadb_replica options for replicating from ``server`` (default: primary)."""
        server = server or self.primary
        a = dict(primary_host='127.0.0.1', primary_port=server.port, primary_user='replicator',
                 primary_password=REPL_PW, primary_login_user=ADMIN_USER, primary_login_password=ADMIN_PW,
                 create_primary_user=True, databases=['mail'], wait_timeout=60)
        a.update(kw)
        return a

    def reset_replica(self):
        """An empty replica: no replication, no mail database, no GTID position."""
        r = self.replica
        r.sql('STOP ALL SLAVES')
        for row in r.sql('SHOW ALL SLAVES STATUS'):
            r.sql('RESET SLAVE %s ALL', (row[0],))
        r.sql('DROP DATABASE IF EXISTS mail', log_bin=False)
        r.sql("SET GLOBAL gtid_slave_pos = ''")

    def wait_for(self, what, fn, timeout=30):
        deadline = time.time() + timeout
        while True:
            value = fn()
            if value:
                return value
            if time.time() > deadline:
                raise AssertionError('timed out waiting for %s' % what)
            time.sleep(0.2)

    def replicated(self, row_id, timeout=30):
        return self.wait_for('row %d on the replica' % row_id,
                             lambda: self.replica.sql('SELECT body FROM mail.msg WHERE id = %s', (row_id,)), timeout)

    def replica_binlog(self):
        """The Info column of every event in the replica's own binary logs."""
        out = []
        for log in self.replica.sql('SHOW BINARY LOGS'):
            out += [row[5] for row in self.replica.sql("SHOW BINLOG EVENTS IN '%s'" % log[0])]
        return out

    def healthy_from(self, server, user='replicator'):
        s = self.replica.slave()
        return (s is not None and s['Master_Port'] == server.port and s['Master_User'] == user
                and s['Slave_IO_Running'] == 'Yes' and s['Slave_SQL_Running'] == 'Yes')


@pytest.fixture(scope='module')
def cluster():
    c = Cluster()
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture
def ansible(cluster, tmp_path):
    return base.Runner(cluster.replica, tmp_path)


def replicating(cluster, ansible, server=None, user='replicator', password=REPL_PW):
    """Bring the replica to 'replicating from server as user' (through the module when it is not)."""
    server = server or cluster.primary
    if not cluster.healthy_from(server, user):
        r = ansible.run('mariadb_replica', cluster.args(server, primary_user=user, primary_password=password))
        assert not r.get('failed'), r['msg']
    assert cluster.healthy_from(server, user)


def no_secrets(ansible):
    for s in SECRETS:
        assert s not in ansible.last_output
    return True


# --- tests ------------------------------------------------------------------

def test_check_mode_on_empty_replica_changes_nothing(cluster, ansible):
    cluster.reset_replica()
    cluster.primary.sql("DROP USER IF EXISTS 'replicator'@'%'")
    r = ansible.run('mariadb_replica', cluster.args(), check_mode=True, diff=True)
    assert not r.get('failed'), r['msg']
    assert r['changed']
    assert r['actions'] == ['create primary user', 'load snapshot', 'set gtid_slave_pos', 'change master',
                            'start slave']
    assert r['diff']['before'] == {} and r['diff']['after']['primary_port'] == cluster.primary.port
    assert r['snapshot']['databases'] == ['mail'] and r['status']['configured'] is False
    assert cluster.replica.slave() is None
    assert cluster.replica.sql("SHOW DATABASES LIKE 'mail'") == ()
    assert cluster.primary.sql("SELECT 1 FROM mysql.user WHERE user = 'replicator'") == ()


def test_empty_replica_snapshot_replication_then_nothing_to_do(cluster, ansible):
    cluster.reset_replica()
    cluster.primary.sql("DROP USER IF EXISTS 'replicator'@'%'")
    r1, r2, info = ansible.tasks([
        ('mariadb_replica', cluster.args(), {'diff': True}),
        ('mariadb_replica', cluster.args(), {'diff': True}),
        ('mariadb_replica_info', {}, {}),
    ], verbosity=3)
    assert no_secrets(ansible)
    assert not r1.get('failed'), r1['msg']
    assert r1['changed']
    assert r1['actions'] == ['create primary user', 'load snapshot', 'set gtid_slave_pos', 'change master',
                             'start slave']
    assert r1['snapshot']['gtid_pos'] and r1['snapshot']['bytes'] > 0
    assert r1['status']['healthy'] and r1['status']['using_gtid'] == 'Slave_Pos'
    assert r1['diff']['after']['password_changed'] is True
    # the snapshot is on the replica, not in its own binary log
    assert cluster.replica.sql('SELECT id, body FROM mail.msg ORDER BY id') == (
        (1, 'before the snapshot'), (2, 'also before'))
    assert not [e for e in cluster.replica_binlog() if 'CREATE TABLE `msg`' in e]
    # second run: nothing to do, and it says so
    assert not r2.get('failed'), r2['msg']
    assert r2['changed'] is False and r2['actions'] == []
    assert 'nothing changed' in r2['msg']
    assert r2['status']['seconds_behind'] == 0 and r2['status']['healthy']
    assert r2['status']['gtid_slave_pos'] == r2['primary']['gtid_binlog_pos']
    assert info['healthy'] is True and info['status']['last_sql_errno'] == 0 and info['changed'] is False
    assert info['status']['io_running'] and info['status']['sql_running']
    # a new row on the primary arrives
    cluster.primary.sql("INSERT INTO mail.msg VALUES (3, 'after the snapshot')")
    assert cluster.replicated(3) == (('after the snapshot',),)


def test_wrong_password_and_unreachable_primary_change_nothing(cluster, ansible):
    replicating(cluster, ansible)
    before = cluster.replica.slave()
    closed_port = base._free_port()
    bad_pw, bad_port = ansible.tasks([
        ('mariadb_replica', cluster.args(primary_password=WRONG_PW, create_primary_user=False), {}),
        ('mariadb_replica', cluster.args(primary_port=closed_port), {}),
    ], verbosity=3)
    assert no_secrets(ansible)
    assert bad_pw['failed'] and not bad_pw['changed']
    assert "the primary 127.0.0.1:%d as 'replicator'" % cluster.primary.port in bad_pw['msg']
    assert '1045' in bad_pw['msg'] and 'Nothing was changed' in bad_pw['msg']
    assert bad_port['failed'] and not bad_port['changed']
    assert '127.0.0.1:%d' % closed_port in bad_port['msg'] and '2003' in bad_port['msg']
    after = cluster.replica.slave()
    for k in ('Master_Host', 'Master_Port', 'Master_User', 'Slave_IO_Running', 'Slave_SQL_Running', 'Using_Gtid'):
        assert after[k] == before[k], k
    # the wrong password was not stored either: replication still works
    cluster.primary.sql("INSERT INTO mail.msg VALUES (10, 'still replicating')")
    cluster.replicated(10)


def test_primary_change_reconfigures(cluster, ansible):
    replicating(cluster, ansible)
    cluster.primary.sql("CREATE USER IF NOT EXISTS 'replicator2'@'%%' IDENTIFIED BY %s", (REPL2_PW,))
    cluster.primary.sql("GRANT REPLICATION SLAVE ON *.* TO 'replicator2'@'%'")
    # primary2 follows primary, so it has the accounts and every transaction
    cluster.wait_for('primary2 to catch up', lambda: cluster.primary2.sql(
        "SELECT 1 FROM mysql.user WHERE user = 'replicator2'"))
    new_user, new_primary, again = ansible.tasks([
        ('mariadb_replica', cluster.args(primary_user='replicator2', primary_password=REPL2_PW,
                                         create_primary_user=False), {'diff': True}),
        ('mariadb_replica', cluster.args(cluster.primary2, create_primary_user=False), {'diff': True}),
        ('mariadb_replica', cluster.args(cluster.primary2, create_primary_user=False), {}),
    ], verbosity=3)
    assert no_secrets(ansible)
    assert not new_user.get('failed'), new_user['msg']
    assert new_user['actions'] == ['stop slave', 'change master', 'start slave']
    assert new_user['diff']['before']['primary_user'] == 'replicator'
    assert new_user['diff']['after']['primary_user'] == 'replicator2'
    assert "primary_user 'replicator' -> 'replicator2'" in new_user['msg']
    assert not new_primary.get('failed'), new_primary['msg']
    assert new_primary['actions'] == ['stop slave', 'change master', 'start slave']
    assert new_primary['diff']['after']['primary_port'] == cluster.primary2.port
    assert new_primary['status']['primary_server_id'] == 3
    assert not again['changed']
    # written on primary, relayed by primary2
    cluster.primary.sql("INSERT INTO mail.msg VALUES (20, 'through primary2')")
    cluster.replicated(20)


def test_update_password(cluster, ansible):
    replicating(cluster, ansible)
    # IF EXISTS: the statement replicates, and the replica has no such account
    cluster.primary.sql("ALTER USER IF EXISTS 'replicator'@'%%' IDENTIFIED BY %s", (REPL2_PW,))
    on_create, always, again = ansible.tasks([
        # the IO thread stays logged in with the old password: on_create sees nothing to do
        ('mariadb_replica', cluster.args(primary_password=REPL2_PW, create_primary_user=False), {}),
        # always compares with the stored password
        ('mariadb_replica', cluster.args(primary_password=REPL2_PW, update_password='always',
                                         create_primary_user=False), {'diff': True}),
        ('mariadb_replica', cluster.args(primary_password=REPL2_PW, update_password='always',
                                         create_primary_user=False), {}),
    ], verbosity=3)
    assert no_secrets(ansible)
    assert not on_create.get('failed') and not on_create['changed'], on_create['msg']
    assert not always.get('failed'), always['msg']
    assert always['actions'] == ['stop slave', 'change master', 'start slave']
    assert 'password (the stored replication password differs' in always['msg']
    assert always['diff']['after']['password_changed'] is True
    assert not again.get('failed') and not again['changed'], again['msg']
    # create_primary_user with update_password=always gives the account primary_password again
    back = ansible.run('mariadb_replica', cluster.args(update_password='always'))
    assert not back.get('failed'), back['msg']
    assert back['actions'] == ['set primary user password', 'stop slave', 'change master', 'start slave']
    cluster.primary.sql("INSERT INTO mail.msg VALUES (30, 'after the password change')")
    cluster.replicated(30)


def test_broken_replica_fails_and_info_reports_it(cluster, ansible):
    replicating(cluster, ansible)
    cluster.replicated(2)
    cluster.replica.sql("INSERT INTO mail.msg VALUES (40, 'conflict made on the replica')", log_bin=False)
    cluster.primary.sql("INSERT INTO mail.msg VALUES (40, 'from the primary')")
    cluster.wait_for('the SQL thread to stop', lambda: cluster.replica.slave()['Slave_SQL_Running'] == 'No')
    run, info, info_fail = ansible.tasks([
        ('mariadb_replica', cluster.args(), {}),
        ('mariadb_replica_info', {}, {}),
        ('mariadb_replica_info', {'fail_on_unhealthy': True}, {}),
    ])
    assert run['failed']
    assert 'broken' in run['msg'] and '1062' in run['msg']
    assert run['status']['healthy'] is False and run['status']['last_sql_errno'] == 1062
    assert not info.get('failed') and info['healthy'] is False
    assert info['status']['last_sql_errno'] == 1062 and 'Duplicate entry' in info['status']['last_sql_error']
    assert info['status']['sql_running'] is False
    assert any('SQL thread is not running' in p for p in info['status']['problems'])
    assert info_fail['failed'] and 'not healthy' in info_fail['msg'] and '1062' in info_fail['msg']
    # repaired, the next run starts replication again
    cluster.replica.sql('DELETE FROM mail.msg WHERE id = 40', log_bin=False)
    r = ansible.run('mariadb_replica', cluster.args())
    assert not r.get('failed'), r['msg']
    assert r['changed'] and r['actions'] == ['start slave']
    assert cluster.replica.sql('SELECT body FROM mail.msg WHERE id = 40') == (('from the primary',),)


def test_wait_timeout_and_max_lag(cluster, ansible):
    replicating(cluster, ansible)
    # a delayed replica (a setting the module does not manage, so it stays)
    cluster.replica.sql('STOP SLAVE')
    cluster.replica.sql('CHANGE MASTER TO MASTER_DELAY = 30')
    cluster.replica.sql('START SLAVE')
    try:
        cluster.primary.sql("INSERT INTO mail.msg VALUES (60, 'delayed')")
        cluster.wait_for('the replica to receive it', lambda: cluster.replica.slave()['Gtid_IO_Pos'] ==
                         cluster.primary.scalar('SELECT @@gtid_binlog_pos'))
        late, lenient = ansible.tasks([
            ('mariadb_replica', cluster.args(wait_timeout=2), {}),
            ('mariadb_replica', cluster.args(wait_timeout=30, max_lag=3600), {}),
        ])
        assert late['failed'] and not late['changed']
        assert 'did not catch up within 2 s (wait_timeout)' in late['msg'] and 'domain 0: at 0-1-' in late['msg']
        assert not lenient.get('failed') and not lenient['changed'], lenient['msg']
        assert 'within max_lag' in lenient['msg']
        assert cluster.replica.slave()['SQL_Delay'] == 30
    finally:
        cluster.replica.sql('STOP SLAVE')
        cluster.replica.sql('CHANGE MASTER TO MASTER_DELAY = 0')
        cluster.replica.sql('START SLAVE')
    cluster.replicated(60)


def test_refuses_replica_with_data_and_rolls_back_a_failed_snapshot(cluster, ansible):
    cluster.reset_replica()
    cluster.replica.sql('CREATE DATABASE mail', log_bin=False)
    cluster.replica.sql('CREATE TABLE mail.local_only (id INT PRIMARY KEY)', log_bin=False)
    r = ansible.run('mariadb_replica', cluster.args())
    assert r['failed'] and not r['changed']
    assert 'cannot tell where replication should start' in r['msg'] and 'mail (1 tables)' in r['msg']
    assert cluster.replica.slave() is None
    # a snapshot that cannot be loaded: a view on a database the snapshot does not copy
    cluster.replica.sql('DROP DATABASE mail', log_bin=False)
    cluster.primary.sql('CREATE DATABASE IF NOT EXISTS other')
    cluster.primary.sql('CREATE TABLE IF NOT EXISTS other.t (id INT PRIMARY KEY)')
    cluster.primary.sql('CREATE OR REPLACE VIEW mail.v AS SELECT id FROM other.t')
    try:
        r = ansible.run('mariadb_replica', cluster.args(), verbosity=3)
    finally:
        cluster.primary.sql('DROP VIEW IF EXISTS mail.v')
    assert no_secrets(ansible)
    assert r['failed']
    assert 'Loading the snapshot of mail from the primary failed' in r['msg'] and 'other' in r['msg']
    assert 'put back as it was' in r['msg']
    assert cluster.replica.slave() is None
    assert cluster.replica.sql("SHOW DATABASES LIKE 'mail'") == ()
    assert cluster.replica.scalar('SELECT @@gtid_slave_pos') == ''


def test_stopped_and_absent(cluster, ansible):
    replicating(cluster, ansible)
    stop, stop2, absent_check, absent, absent2, info = ansible.tasks([
        ('mariadb_replica', {'state': 'stopped'}, {}),
        ('mariadb_replica', {'state': 'stopped'}, {}),
        ('mariadb_replica', {'state': 'absent'}, {'check_mode': True, 'diff': True}),
        ('mariadb_replica', {'state': 'absent'}, {}),
        ('mariadb_replica', {'state': 'absent'}, {}),
        ('mariadb_replica_info', {}, {}),
    ])
    assert stop['changed'] and stop['actions'] == ['stop slave']
    assert not stop2['changed']
    assert absent_check['changed'] and absent_check['actions'] == ['reset slave all']
    assert absent_check['diff']['after'] == {} and absent_check['diff']['before']['running'] is False
    assert absent['changed'] and absent['actions'] == ['reset slave all']
    assert not absent2['changed']
    assert cluster.replica.slave() is None
    assert info['healthy'] is False and info['status']['configured'] is False
    assert info['status']['problems'] == ['replication is not configured']
    # data and position stay: a new connection (a named one, this time) continues from
    # gtid_slave_pos without a snapshot
    cluster.primary.sql("INSERT INTO mail.msg VALUES (50, 'while detached')")
    try:
        named, named_info, named_again = ansible.tasks([
            ('mariadb_replica', cluster.args(connection_name='East-1'), {}),
            ('mariadb_replica_info', {'connection_name': 'East-1'}, {}),
            # always: reads master-east@002d1.info to compare the password
            ('mariadb_replica', cluster.args(connection_name='East-1', update_password='always'), {}),
        ])
        assert not named.get('failed'), named['msg']
        assert named['actions'] == ['change master', 'start slave'] and 'snapshot' not in named
        assert named_info['healthy'] and named_info['status']['connection_name'] == 'East-1'
        assert not named_again.get('failed') and not named_again['changed'], named_again['msg']
        assert not named_again.get('warnings')
        cluster.replicated(50)
        assert cluster.replica.slave('east-1') is not None and cluster.replica.slave() is None
    finally:
        cluster.reset_replica()


def test_invalid_options_are_named(cluster, ansible):
    r1, r2 = ansible.tasks([
        ('mariadb_replica', cluster.args(primary_host='localhost', wait_timeout=-1), {}),
        ('mariadb_replica', cluster.args(create_primary_user=True, primary_login_user=None,
                                         databases=['mail', 'mysql']), {}),
    ])
    assert r1['failed'] and 'primary_host:' in r1['msg'] and 'wait_timeout:' in r1['msg']
    assert r2['failed'] and 'create_primary_user:' in r2['msg'] and "databases[1]: 'mysql'" in r2['msg']
