"""The moves' account (mail_database_mover_user) against a real MariaDB: the
mail_database role's own account task (roles/mail_database/tasks/main.yml,
"Accounts of the mail database", with the role's defaults and vars, so the
grant is mail_database__mover_priv as the role renders it) applied to the
throw-away server, then a whole move's database side (MoveDB, as
mailbox_move runs it) as that account, and what it must not do refused."""

import json
import os
import sys

import pytest
import yaml

from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import schema_version
from ansible_collections.mailops.mailstack.plugins.module_utils.mailbox_move_db import MoveDB
from mailstack_testlib.mariadb import DB_NAME, Database, pymysql
from mailstack_testlib.runner import REPO, ansible_env, playbook, recap

ROLE = os.path.join(REPO, 'roles', 'mail_database')
TASK = 'Accounts of the mail database'
MOVER = 'mail_mover'
PASSWORD = 'M0ver-pw-for-tests'
EMAIL = 'a@example.org'
# Access denied to a table (1142), to a column (1143).
TABLE_DENIED, COLUMN_DENIED = 1142, 1143


def _role_task(name):
    """The role's task of that name (inside its blocks)."""
    with open(os.path.join(ROLE, 'tasks', 'main.yml')) as f:
        pending = list(yaml.safe_load(f))
    while pending:
        task = pending.pop(0)
        if task.get('name') == name:
            return task
        pending.extend(task.get('block', []))
    raise AssertionError('no task %r in the mail_database role' % name)


def _run_role_tasks(server, tmp_path, names, **settings):
    """Runs the role's tasks of those names, with the role's defaults and
    vars, every account's hosts empty but those settings give; the PLAY
    RECAP's changed count."""
    play = [{'hosts': 'localhost', 'gather_facts': False, 'connection': 'local',
             'vars_files': [os.path.join(ROLE, 'defaults', 'main.yml'), os.path.join(ROLE, 'vars', 'main.yml')],
             'tasks': [_role_task(name) for name in names]}]
    extra = {'mail_database__socket': server.socket, 'mail_database_mode': 'primary', 'mail_database_tls': False,
             'mail_database_name': DB_NAME, 'mail_database_mover_password': PASSWORD}
    for account in ('admin', 'mover', 'postfix', 'dovecot', 'roundcube'):
        extra.update({'mail_database_%s_hosts' % account: [], 'mail_database_%s_password' % account: 'unused'})
    extra.update(settings)
    (tmp_path / 'play.yml').write_text(yaml.safe_dump(play))
    (tmp_path / 'settings.json').write_text(json.dumps(extra))
    proc = playbook('-i', 'localhost,', '-e', '@' + str(tmp_path / 'settings.json'), str(tmp_path / 'play.yml'),
                    env=ansible_env(ANSIBLE_LOCALHOST_WARNING='False', ANSIBLE_PYTHON_INTERPRETER=sys.executable),
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return int(recap(proc.stdout, 'localhost')['changed'])


def _apply_role_accounts(server, tmp_path):
    """The role's account task with the moves' account the only one made (for 127.0.0.1)."""
    return _run_role_tasks(server, tmp_path, [TASK], mail_database_mover_hosts=['127.0.0.1'],
                           mail_database_mover_password=PASSWORD)


@pytest.fixture(scope='module')
def mover_account(mariadb, tmp_path_factory):
    """The role's grant, applied once for this file (a grant outlives the
    tables each test drops and makes again)."""
    Database(mariadb).close()
    root = mariadb.root()
    with root.cursor() as cur:
        cur.execute("DROP USER IF EXISTS '%s'@'127.0.0.1'" % MOVER)
    root.close()
    tmp_path = tmp_path_factory.mktemp('mover')
    assert _apply_role_accounts(mariadb, tmp_path) == 1
    # A second run changes nothing (the grant reads back as SHOW GRANTS prints it).
    assert _apply_role_accounts(mariadb, tmp_path) == 0


@pytest.fixture
def mover(mover_account, db):
    """MoveDB logged in as the moves' account, over TCP on loopback as from a shard."""
    db.execute("INSERT INTO domain (name, kind, active) VALUES ('example.org', 'local', 1)")
    db.execute("INSERT INTO mailbox_host (name, address) VALUES ('ms1', '10.0.0.1'), ('ms2', '10.0.0.2')")
    db.execute("INSERT INTO mailbox (email, local_part, domain, password, quota, mailbox_host, maildir) "
               "VALUES (%s, 'a', 'example.org', '{PLAIN}x', 1024, 'ms1', 'example.org/a/'), "
               "('b@example.org', 'b', 'example.org', '{PLAIN}x', 1024, 'ms1', 'example.org/b/')", (EMAIL,))
    conn = pymysql.connect(host='127.0.0.1', port=db.server.port, user=MOVER, password=PASSWORD, database=DB_NAME,
                           autocommit=False, charset='utf8mb4')
    try:
        yield MoveDB(conn)
    finally:
        conn.close()


def test_a_whole_move_runs_as_the_moves_account(mover, db):
    assert schema_version(mover.conn) >= 4
    assert mover.mailbox(EMAIL) == ('ms1', 'example.org/a/')
    assert mover.hosts()['ms2'] == {'address': '10.0.0.2', 'state': 'active'}
    assert mover.start(EMAIL, 'ms1', 'ms2', 'ms2:100', 900) is None
    assert mover.lock(EMAIL, 'ms2:100', 900) is None
    mover.save(EMAIL, sync_state='STATE1')
    mover.set_state(EMAIL, 'held', host='ms2', hold=30)
    assert db.query("SELECT mailbox_host, hold_until IS NOT NULL FROM mailbox WHERE email = %s", (EMAIL,))[0] \
        == ('ms2', 1)
    mover.set_state(EMAIL, 'done', hold=0, source_status='[["INBOX", "1"]]')
    mover.unlock(EMAIL, 'ms2:100')
    assert mover.holder(EMAIL) == (None, None)
    # The cleanup: the other users' maildirs near the path (from the index,
    # maildir_odd among the columns read), then the record removed.
    assert mover.other_maildirs(EMAIL, 'example.org/') == ['example.org/b/']
    assert mover.other_maildirs(EMAIL, 'example.org/a/') == []
    mover.set_state(EMAIL, None)
    assert db.query("SELECT mailbox_host, hold_until, (SELECT COUNT(*) FROM mailbox_move) FROM mailbox "
                    "WHERE email = %s", (EMAIL,))[0] == ('ms2', None, 0)


@pytest.mark.parametrize('sql, code', [
    ('SELECT password FROM mailbox', COLUMN_DENIED),
    ('SELECT * FROM mailbox', TABLE_DENIED),
    ("UPDATE mailbox SET quota = 0 WHERE email = 'a@example.org'", COLUMN_DENIED),
    ("UPDATE mailbox SET password = 'x' WHERE email = 'a@example.org'", COLUMN_DENIED),
    ('DELETE FROM mailbox', TABLE_DENIED),
    ("INSERT INTO mailbox (email, local_part, domain, password, maildir) "
     "VALUES ('c@example.org', 'c', 'example.org', 'x', 'c/')", TABLE_DENIED),
    ("UPDATE mailbox_host SET state = 'draining'", TABLE_DENIED),
    ('SELECT weight FROM mailbox_host', COLUMN_DENIED),
    ('SELECT name FROM domain', TABLE_DENIED),
    ('SELECT destination FROM alias', TABLE_DENIED),
    ('DELETE FROM schema_version', TABLE_DENIED),
])
def test_the_moves_account_is_refused_what_a_move_does_not_do(mover, sql, code):
    with pytest.raises(pymysql.err.MySQLError) as refused:
        with mover.conn.cursor() as cur:
            cur.execute(sql)
    assert refused.value.args[0] == code, refused.value.args


def _accounts(server, users):
    root = server.root()
    with root.cursor() as cur:
        cur.execute('SELECT User, Host FROM mysql.user WHERE User IN %s ORDER BY User, Host', (users,))
        found = [tuple(row) for row in cur.fetchall()]
    root.close()
    return found


def test_write_accounts_of_hosts_no_longer_listed_are_dropped(mover_account, mariadb, tmp_path):
    """A shard's provisioning account from an earlier wiring, and a moves'
    account of a shard that left, go; the listed ones stay (the test
    server's own mailadmin included)."""
    root = mariadb.root()
    with root.cursor() as cur:
        for user, host in (('mailadmin', '10.9.9.41'), (MOVER, '10.9.9.42')):
            cur.execute("CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY 'x'" % (user, host))
    root.close()
    names = ['The hosts the write accounts have', 'Drop the write accounts of hosts no longer listed']
    listed = dict(mail_database_admin_hosts=['localhost', '127.0.0.1'], mail_database_mover_hosts=['127.0.0.1'])
    assert _run_role_tasks(mariadb, tmp_path, names, **listed) == 1
    assert _accounts(mariadb, ('mailadmin', MOVER)) == [
        ('mail_mover', '127.0.0.1'), ('mailadmin', '127.0.0.1'), ('mailadmin', 'localhost')]
    assert _run_role_tasks(mariadb, tmp_path, names, **listed) == 0
