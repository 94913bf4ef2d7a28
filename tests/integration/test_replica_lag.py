"""A move's flip and hold reach the replicas before anything relies on the
readers seeing them (issue 28, step R: Dovecot and Postfix read the
replicas while the primary is up), against a real primary and a real GTID
replica: two throw-away MariaDB servers on one port, the primary on
127.0.0.1, the replica on 127.0.0.2 (read-only, replicating with
MASTER_USE_GTID). The moves' account is made on each by the mail_database
role's own account task (on the replica without any right).

mailbox_move's state machine runs with its real database side (MoveDB as
the moves' account, connected as maildb.connect does: the first server of
[primary, replica] that takes writes) and the module's real wait
(replica_wait.waiter: the replica is login_host's other server); Dovecot is
the unit tests' fake, which looks at the replica at each kick.

- A replica that applies each event one second late (MASTER_DELAY): the
  move waits, and at the first kick the replica serves the new shard and
  the hold.
- A replica whose SQL thread stops after the record and before the flip:
  the move fails still held, naming the replica and how far behind it is;
  started again, a rerun finishes the move.
- A replica that is down (refuses connections): passed over with a warning.
"""

import importlib.util
import os
import sys
import time

import pytest

from ansible_collections.mailops.mailstack.plugins.module_utils import mailbox_move_fs as fs
from ansible_collections.mailops.mailstack.plugins.module_utils.mailbox_move_db import MoveDB
from ansible_collections.mailops.mailstack.plugins.module_utils.mailbox_move_machine import MoveError, Mover
from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import connect_args, first_usable
from ansible_collections.mailops.mailstack.plugins.module_utils.replica_wait import waiter
from mailstack_testlib.mariadb import DB_NAME, Database, MariaDB, _free_port

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'unit', 'plugins', 'module_utils'))
from mailbox_move_fakes import EMAIL, HOSTS, Clock, FakeDovecot  # noqa: E402


def _load(name):
    spec = importlib.util.spec_from_file_location('mailstack_' + name, os.path.join(HERE, name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The role's account task, as test_mover_grants.py applies it.
grants = _load('test_mover_grants')
MOVER, PASSWORD = grants.MOVER, grants.PASSWORD
REPL, REPL_PASSWORD = 'repl', 'Repl-pw-for-tests'
MS1, MS2 = HOSTS['ms1'], HOSTS['ms2']


def _sql(server, statement, args=None):
    conn = server.root()
    try:
        with conn.cursor() as cur:
            cur.execute(statement, args)
            return cur.fetchall()
    finally:
        conn.close()


def _caught_up(primary, replica):
    position = _sql(primary, 'SELECT @@global.gtid_binlog_pos')[0][0]
    assert _sql(replica, 'SELECT MASTER_GTID_WAIT(%s, 30)', (position,))[0][0] == 0, replica.log


@pytest.fixture(scope='module')
def pair(tmp_path_factory):
    port = _free_port()
    binlog = ['--log-bin=mariadb-bin', '--binlog-format=ROW', '--gtid-domain-id=0']
    primary = MariaDB('127.0.0.1', port, options=['--server-id=1'] + binlog)
    # As the mail_database role makes a replica: Roundcube's database is not replicated.
    replica = MariaDB('127.0.0.2', port, options=['--server-id=2', '--read-only=ON', '--log-slave-updates',
                                                  '--replicate-wild-ignore-table=roundcube.%'] + binlog)
    try:
        for server in (primary, replica):
            server.start()
        for statement in ("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'" % (REPL, REPL_PASSWORD),
                          "GRANT REPLICATION SLAVE ON *.* TO '%s'@'127.0.0.1'" % REPL):
            conn = primary.root()
            with conn.cursor() as cur:
                cur.execute('SET SESSION sql_log_bin = 0')
                cur.execute(statement)
            conn.close()
        # The replica starts from the primary's position now (each server
        # made its own test accounts).
        _sql(replica, 'SET GLOBAL gtid_slave_pos = %s', (_sql(primary, 'SELECT @@global.gtid_binlog_pos')[0][0],))
        _sql(replica, "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %d, MASTER_USER = '%s', "
                      "MASTER_PASSWORD = '%s', MASTER_USE_GTID = slave_pos" % (port, REPL, REPL_PASSWORD))
        _sql(replica, 'START SLAVE')
        Database(primary).close()
        _caught_up(primary, replica)
        tmp = tmp_path_factory.mktemp('accounts')
        for server, mode in ((primary, 'primary'), (replica, 'replica')):
            for changed in (1, 0):  # the second run changes nothing
                assert grants._run_role_tasks(server, tmp, [grants.TASK], mail_database_mode=mode,
                                              mail_database_mover_hosts=['127.0.0.1'],
                                              mail_database_mover_password=PASSWORD) == changed
        # On the replica the account has no right at all.
        assert [g[0].split(' IDENTIFIED')[0] for g in _sql(replica, "SHOW GRANTS FOR '%s'@'127.0.0.1'" % MOVER)] \
            == ["GRANT USAGE ON *.* TO `%s`@`127.0.0.1`" % MOVER]
        yield primary, replica
    finally:
        for server in (primary, replica):
            server.stop()


@pytest.fixture
def site(pair):
    """The mail database reset on the primary (replicated), replication
    running without delay, the module's parameters."""
    primary, replica = pair
    if replica.proc is None or replica.proc.poll() is not None:
        pytest.fail('the replica is not running (an earlier test stopped it)')
    _sql(replica, 'STOP SLAVE')
    _sql(replica, 'CHANGE MASTER TO MASTER_DELAY = 0')
    _sql(replica, 'START SLAVE')
    db = Database(primary)
    db.execute("INSERT INTO domain (name, kind, active) VALUES ('example.test', 'local', 1)")
    db.execute("INSERT INTO mailbox_host (name, address) VALUES ('ms1', %s), ('ms2', %s)", (MS1, MS2))
    db.execute("INSERT INTO mailbox (email, local_part, domain, password, mailbox_host, maildir) "
               "VALUES (%s, 'carol', 'example.test', 'x', 'ms1', 'example.test/carol/')", (EMAIL,))
    db.close()
    _caught_up(primary, replica)
    params = dict(target='ms2', proxies=[], hold_timeout=30, quiet_timeout=5, max_syncs=5, lock_seconds=900,
                  abort=False, cleanup=False, mail_root='/nonexistent', run_seconds=0,
                  login_host=['127.0.0.1', '127.0.0.2'], login_port=primary.port, login_user=MOVER,
                  login_password=PASSWORD, login_unix_socket=None, connect_timeout=5, ca_cert=None,
                  database=DB_NAME, replicas=None, replica_timeout=5)
    return primary, replica, params


def _replica_row(replica):
    return _sql(replica, 'SELECT mailbox_host, hold_until IS NOT NULL FROM mail.mailbox WHERE email = %s',
                (EMAIL,))[0]


class Watched(FakeDovecot):
    """The fake Dovecot, noting what the replica serves at each kick."""

    def __init__(self, boxes, local, replica):
        super(Watched, self).__init__(boxes, local)
        self.replica, self.seen = replica, []

    def kick(self, address, proxy=False):
        self.seen.append(_replica_row(self.replica))
        return super(Watched, self).kick(address, proxy)


def _move(params, replica, make_wait=waiter):
    """One run of the machine as the module builds it: (mover, dovecot, result)."""
    targets = [('%s:%s' % (h, params['login_port']), dict(host=h, port=params['login_port']))
               for h in params['login_host']]
    conn, failures = first_usable(targets, connect_args(params))
    assert conn is not None and conn.host == '127.0.0.1', failures
    boxes = {MS1: ['<m%d@x>' % i for i in range(3)], MS2: []}
    dovecot = Watched(boxes, MS2, replica)
    clock = Clock()
    mover = Mover(EMAIL, params, MoveDB(conn), dovecot, fs, is_local=lambda address: address == MS2,
                  owner='ms2:%d' % os.getpid(), clock=clock, sleep=clock.sleep,
                  replicas=make_wait(params, conn))
    try:
        return mover, dovecot, mover.run()
    finally:
        conn.close()


def test_a_lagging_replica_serves_the_flip_and_the_hold_before_the_first_kick(site):
    primary, replica, params = site
    _sql(replica, 'STOP SLAVE')
    _sql(replica, 'CHANGE MASTER TO MASTER_DELAY = 1')
    _sql(replica, 'START SLAVE')
    started = time.time()
    _mover, dovecot, result = _move(params, replica)
    assert result['outcome'] == 'moved' and dovecot.seen
    assert dovecot.seen[0] == ('ms2', 1), 'the replica served %s at the first kick' % (dovecot.seen[0],)
    assert time.time() - started >= 1


def test_a_replica_whose_sql_thread_stopped_fails_the_move_still_held_naming_it(site):
    primary, replica, params = site
    calls = []

    def stop_after_the_record(p, conn):
        wait = waiter(p, conn)

        def stopping():
            warnings = wait()
            if not calls:
                _sql(replica, 'STOP SLAVE SQL_THREAD')  # after the record's wait, before the flip
            calls.append(1)
            return warnings
        return stopping
    params = dict(params, replica_timeout=2)
    with pytest.raises(MoveError) as e:
        _move(params, replica, stop_after_the_record)
    message = str(e.value)
    assert '127.0.0.2 has not applied it within 2 s' in message and 'transaction(s) behind' in message, message
    assert 'still held' in message
    assert _sql(primary, 'SELECT state FROM mail.mailbox_move WHERE email = %s', (EMAIL,))[0][0] == 'held'
    assert _replica_row(replica) == ('ms1', 0)
    _sql(replica, 'START SLAVE SQL_THREAD')
    _mover, dovecot, result = _move(params, replica)
    assert result['outcome'] == 'resumed' and dovecot.seen[0] == ('ms2', 1)


def test_a_replica_that_is_down_is_passed_over_with_a_warning(site):
    primary, replica, params = site
    # A third server in the list that nothing listens on (127.0.0.3, the same port).
    params = dict(params, login_host=params['login_host'] + ['127.0.0.3'])
    mover, _dovecot, result = _move(params, replica)
    assert result['outcome'] == 'moved'
    assert any(w.startswith('replica 127.0.0.3 is down') for w in mover.warnings), mover.warnings


def test_a_position_ending_in_a_roundcube_write_the_replica_ignores_is_reached(site):
    """repin_server.yml waits for the primary's whole position
    (gtid_binlog_pos): a last transaction in Roundcube's database, which a
    replica does not replicate, still counts as applied there."""
    primary, replica, _params = site
    _sql(primary, 'CREATE DATABASE IF NOT EXISTS roundcube')
    _sql(primary, 'CREATE TABLE IF NOT EXISTS roundcube.session (id INT PRIMARY KEY AUTO_INCREMENT)')
    _sql(primary, 'INSERT INTO roundcube.session VALUES ()')
    position = _sql(primary, 'SELECT @@global.gtid_binlog_pos')[0][0]
    assert _sql(replica, 'SELECT MASTER_GTID_WAIT(%s, 5)', (position,))[0][0] == 0
    assert not _sql(replica, "SHOW DATABASES LIKE 'roundcube'")


# -- repin_server.yml with a replica -----------------------------------------

repin_playbook = _load('test_repin_playbook')


@pytest.fixture
def nfs_site(pair, tmp_path):
    """test_repin_playbook's site (ms1 with u1, u3, u5; ms2 with the others;
    its fakes) on the primary, and db2, the replica, in the inventory (every
    host local; the wait reaches the replica's socket through
    mailstack__replica_socket)."""
    primary, replica = pair
    db = Database(primary)
    repin_playbook.fill(db)
    _caught_up(primary, replica)
    site = repin_playbook.fakes(tmp_path, db, primary.socket, groups="    mail_db_replica: {hosts: {db2: LOCAL}}\n")
    yield dict(site, replica=replica)
    _sql(replica, 'START SLAVE')
    db.close()


def _replica_pins(replica):
    rows = _sql(replica, "SELECT email, mailbox_host, hold_until > NOW() FROM mail.mailbox ORDER BY email")
    return {r[0]: (r[1], bool(r[2])) for r in rows}


def test_a_repin_stops_held_while_a_replica_has_not_applied_the_flip(nfs_site):
    replica = nfs_site["replica"]
    users = repin_playbook.USERS
    (nfs_site["state"] / "sessions").write_text("u1@example.test\timap\n")
    _sql(replica, 'STOP SLAVE SQL_THREAD')
    extra = ("-e", "mailstack__replica_socket=%s" % replica.socket, "-e", "mailstack_repin_replica_timeout=2")
    rc, out = repin_playbook.repin(nfs_site, *extra)
    assert rc != 0 and "db2 has not applied it within 2 s" in out and "The users stay flipped and held" in out, out[-3000:]
    # Flipped and held on the primary, no session ended: the replica still
    # serves the old pins.
    assert repin_playbook.pins(nfs_site) == {u: ("ms2", n % 2 == 1) for n, u in enumerate(users, 1)}
    assert not (nfs_site["state"] / "kicks").exists()
    assert _replica_pins(replica)["u1@example.test"] == ("ms1", False)
    _sql(replica, 'START SLAVE SQL_THREAD')
    rc, out = repin_playbook.repin(nfs_site, *extra)
    assert rc == 0 and "finishing the unfinished run, phase flipped" in out, out[-3000:]
    assert repin_playbook.pins(nfs_site) == {u: ("ms2", False) for u in users}


def test_a_repin_passes_over_a_replica_that_is_down(nfs_site):
    """(The replica's socket given is one where nothing listens.)"""
    extra = ("-e", "mailstack__replica_socket=%s" % (nfs_site["records"] / "none.sock"))
    rc, out = repin_playbook.repin(nfs_site, *extra)
    assert rc == 0 and "replica db2 is down" in out, out[-3000:]
