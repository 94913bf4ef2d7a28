"""maildb.connect with several servers (login_host a list): the first that
answers and takes writes, in the list's order; the error names every server
tried and why it was passed over. PyMySQL is replaced by a fake that plays
each server (refusing, read-only, a Galera node out of the primary
component, usable); the real servers are in tests/integration/test_maildb_hosts.py."""

import pytest

from ansible_collections.mailops.mailstack.plugins.module_utils import maildb


class Failed(Exception):
    pass


class Module(object):
    def __init__(self, **params):
        self.params = dict(login_host=None, login_port=3306, login_user='mailadmin', login_password='pw',
                           login_unix_socket=None, connect_timeout=5, ca_cert=None, database='mail')
        self.params.update(params)

    def fail_json(self, msg, **kwargs):
        raise Failed(msg)


class Server(object):
    """How one fake server answers: refuse (a MySQLError), read_only, wsrep_ready."""

    def __init__(self, refuse=None, read_only=0, wsrep_ready=None, wsrep_on=None):
        self.refuse, self.read_only, self.wsrep_ready = refuse, read_only, wsrep_ready
        # Debian's MariaDB without Galera: wsrep_on OFF, wsrep_ready OFF.
        self.wsrep_on = wsrep_on if wsrep_on is not None else ('ON' if wsrep_ready else 'OFF')


class Cursor(object):
    def __init__(self, server):
        self.server, self.rows = server, []

    def execute(self, sql, args=()):
        if sql.startswith('SHOW GLOBAL VARIABLES') and args == ('wsrep_on',):
            self.rows = [('wsrep_on', self.server.wsrep_on)]
        elif sql.startswith('SHOW GLOBAL STATUS') and args == ('wsrep_ready',):
            self.rows = [('wsrep_ready', self.server.wsrep_ready or 'OFF')]
        elif 'read_only' in sql:
            self.rows = [(self.server.read_only,)]

    def fetchall(self):
        return self.rows

    def close(self):
        pass


class Connection(object):
    def __init__(self, where, server):
        self.where, self.server, self.closed = where, server, False

    def cursor(self):
        return Cursor(self.server)

    def close(self):
        self.closed = True


@pytest.fixture
def servers(monkeypatch):
    """{host or socket: Server}; the connections made, in order."""
    table, made = {}, []

    def fake_connect(**kwargs):
        where = kwargs.get('unix_socket') or kwargs['host']
        made.append((where, kwargs))
        server = table[where]
        if server.refuse:
            raise maildb.pymysql.err.OperationalError(*server.refuse)
        return Connection(where, server)

    monkeypatch.setattr(maildb.pymysql, 'connect', fake_connect)
    return table, made


REFUSED = (2003, "Can't connect to MySQL server on 'db1' ([Errno 111] Connection refused)")


def test_the_first_usable_server_in_the_lists_order(servers):
    table, made = servers
    table.update(db1=Server(), db2=Server())
    conn = maildb.connect(Module(login_host=['db1', 'db2']))
    assert conn.where == 'db1' and [where for where, _kwargs in made] == ['db1']


def test_a_refusing_server_is_passed_over(servers):
    table, made = servers
    table.update(db1=Server(refuse=REFUSED), db2=Server())
    conn = maildb.connect(Module(login_host=['db1', 'db2'], ca_cert='/etc/ca.crt'))
    assert conn.where == 'db2' and [where for where, _kwargs in made] == ['db1', 'db2']
    # The same options for each: port, TLS, database, autocommit off.
    assert all(kw['port'] == 3306 and kw['ssl'] == {'ca': '/etc/ca.crt'} and kw['database'] == 'mail'
               and kw['autocommit'] is False for _where, kw in made)


@pytest.mark.parametrize("first, why", [
    (Server(read_only=1), 'db1:3306: read-only (a replica takes no writes)'),
    (Server(wsrep_ready='OFF'), 'db1:3306: not ready (Galera: wsrep_ready is OFF)'),
])
def test_a_server_that_cannot_take_writes_is_passed_over_and_closed(servers, first, why):
    table, made = servers
    table.update(db1=first, db2=Server(wsrep_ready='ON'))
    assert maildb.connect(Module(login_host=['db1', 'db2'])).where == 'db2'
    table.update(db2=Server(refuse=REFUSED))
    with pytest.raises(Failed) as failed:
        maildb.connect(Module(login_host=['db1', 'db2']))
    assert str(failed.value) == "Cannot connect to the mail database 'mail' as 'mailadmin': %s; db2:3306: (2003) %s" \
        % (why, REFUSED[1])


def test_a_server_without_galera_is_usable_though_it_reports_wsrep_ready_off(servers):
    table, made = servers
    table.update(db1=Server(wsrep_on='OFF'))
    assert maildb.connect(Module(login_host=['db1'])).where == 'db1'


def test_one_host_as_before_and_the_socket_wins(servers):
    table, made = servers
    table.update({'db1': Server(), 'localhost': Server(), '/run/mysqld/mysqld.sock': Server()})
    assert maildb.connect(Module(login_host=['db1'])).where == 'db1'
    assert maildb.connect(Module()).where == 'localhost'
    assert maildb.connect(Module(login_host=['db1'], login_unix_socket='/run/mysqld/mysqld.sock')).where == \
        '/run/mysqld/mysqld.sock'
    assert 'host' not in made[-1][1]


def test_login_host_takes_a_string_or_a_list():
    spec = maildb.maildb_argument_spec()
    assert spec['login_host'] == dict(type='list', elements='str')
    # The replication modules keep one host.
    assert maildb.mariadb_connection_spec()['login_host'] == dict(type='str')
