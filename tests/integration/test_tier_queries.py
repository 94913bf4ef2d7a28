# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The queries the tiers send, as the roles render them for the example
inventories (mailstack_testlib.queries: the real wire.yml and templates),
run against a real mail database."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from mailstack_testlib import queries

# Both tests on one pytest-xdist worker (scripts/test.sh runs --dist
# loadgroup): the module's rendering of the examples (about 55 s of
# ansible-playbook) then runs once, not once on each worker.
pytestmark = pytest.mark.xdist_group('tier_queries')


@pytest.fixture(scope='module')
def rendered(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp('rendered'))
    queries.render(tmp, topologies=('single', 'sharded'))
    return dict(((q.setting, host), q.sql) for q in queries.queries(tmp, topologies=('single', 'sharded'))
                for host in q.hosts)


@pytest.fixture
def users(db):
    """Two shards (the sharded example's ms1 and ms2) with five users each, one of them suspended."""
    db.execute("INSERT INTO domain (name) VALUES ('example.org')")
    db.execute("INSERT INTO mailbox_host (name, address) VALUES ('ms1', '10.0.0.1'), ('ms2', '10.0.0.2')")
    for i in range(10):
        db.execute("INSERT INTO mailbox (email, local_part, domain, password, mailbox_host, maildir, active) "
                   "VALUES (%s, %s, 'example.org', '{PLAIN}x', %s, %s, %s)",
                   ('u%d@example.org' % i, 'u%d' % i, 'ms%d' % (i % 2 + 1), 'example.org/u%d/' % i, int(i < 8)))
    db.execute('ANALYZE TABLE mailbox')
    return db


def test_a_shard_iterates_only_its_own_active_users(rendered, users):
    """doveadm -A on a shard: the users placed there, not every shard's, from the index alone."""
    for shard, expected in (('ms1', ['u0', 'u2', 'u4', 'u6']), ('ms2', ['u1', 'u3', 'u5', 'u7'])):
        sql = rendered[('iterate_query', 'sharded/%s' % shard)]
        assert sorted(u for u, in users.query(sql)) == ['%s@example.org' % e for e in expected], sql
        plan = users.query('EXPLAIN ' + sql)
        assert plan[0][5] == 'mailbox_host_active' and 'Using index' in plan[0][9], (sql, plan)


def test_a_single_server_iterates_every_active_user(rendered, users):
    sql = rendered[('iterate_query', 'single/mx1')]
    assert len(users.query(sql)) == 8, sql
