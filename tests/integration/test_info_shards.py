"""mailstack_info's shard summary (its database section, module function
database(), and module_utils/info.shards) against a real MariaDB: each
shard's users (active or not), the users without a host or on a host not in
mailbox_host, the moves not done per target and state; and the count reads
the index (mailbox_host, active) alone, no row (issue 33: a scan of the
index, measured and kept, docs/performance.md)."""

import pytest

from ansible_collections.mailops.mailstack.plugins.modules import mailstack_info
from mailstack_testlib.mariadb import DB_NAME


class _Module(object):
    def __init__(self, socket):
        self.params = dict(login_unix_socket=socket, database=DB_NAME, max_lag=None)


# (host, active) of each user: ms1 7 (2 suspended), ms2 4, ms3 none,
# 2 without a host, 1 on a host since removed (foreign key checks off, as a
# bulk load may leave it).
USERS = [('ms1', 1)] * 5 + [('ms1', 0)] * 2 + [('ms2', 1)] * 4 + [(None, 1)] * 2 + [('gone', 1)]


@pytest.fixture
def filled(db):
    db.execute("INSERT INTO domain (name) VALUES ('example.org')")
    db.execute("INSERT INTO mailbox_host (name, address, state, weight) VALUES ('ms1', '10.0.0.1', 'active', 100), "
               "('ms2', '10.0.0.2', 'draining', 50), ('ms3', '10.0.0.3', 'readonly', 100)")
    db.execute('SET SESSION foreign_key_checks = 0')
    for i, (host, active) in enumerate(USERS):
        db.execute("INSERT INTO mailbox (email, local_part, domain, password, mailbox_host, maildir, active) "
                   "VALUES (%s, %s, 'example.org', '{PLAIN}x', %s, %s, %s)",
                   ('u%d@example.org' % i, 'u%d' % i, host, 'example.org/u%d/' % i, active))
    db.execute('SET SESSION foreign_key_checks = 1')
    db.execute("INSERT INTO mailbox_move (email, source, target, state) VALUES ('u0@example.org', 'ms1', 'ms2', "
               "'copying'), ('u1@example.org', 'ms1', 'ms2', 'held'), ('u2@example.org', 'ms1', 'ms3', 'copying'), "
               "('u3@example.org', 'ms1', 'ms2', 'done')")
    return db


def test_the_shard_summary_counts_every_user_where_it_is(filled):
    result = mailstack_info.database(_Module(filled.server.socket))
    assert result['shards'] == {
        'hosts': [dict(name='ms1', address='10.0.0.1', state='active', weight=100, users=7, moves_in={}),
                  dict(name='ms2', address='10.0.0.2', state='draining', weight=50, users=4,
                       moves_in={'copying': 1, 'held': 1}),
                  dict(name='ms3', address='10.0.0.3', state='readonly', weight=100, users=0,
                       moves_in={'copying': 1})],
        'users_without_host': 2,
        'users_on_unknown_hosts': {'gone': 1}}


def test_the_shard_summary_reads_the_index_alone(filled, monkeypatch):
    """The statement database() sends: its plan reads the index
    mailbox_host_active (the whole of it, no row: Using index)."""
    seen = []
    real = mailstack_info.query

    def recorded(conn, sql, args=None):
        seen.append(sql)
        return real(conn, sql, args) if args is not None else real(conn, sql)
    monkeypatch.setattr(mailstack_info, 'query', recorded)
    mailstack_info.database(_Module(filled.server.socket))
    count = [sql for sql in seen if 'COUNT(' in sql and '.mailbox ' in sql]
    assert len(count) == 1, seen
    filled.execute('ANALYZE TABLE mailbox')
    plan = filled.query('EXPLAIN ' + count[0])
    assert [(r[2], r[5]) for r in plan] == [('mailbox', 'mailbox_host_active')], plan
    assert plan[0][9] == 'Using index', plan
