# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real, throw-away MariaDB for the module tests, and a runner that calls the
modules through ansible-playbook (both in mailstack_testlib.mariadb).

The server is Debian's mariadbd (scripts/test-host-packages.sh installs it),
started once per session in a temporary data directory, listening on
127.0.0.1:<free port> and on a Unix socket in that directory; it is stopped
and the directory removed at the end of the session.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from mailstack_testlib.galera import Cluster
from mailstack_testlib.mariadb import Database, MariaDB, Runner, _free_port, pymysql

# What test_mariadb_replica.py and test_maildir_sync_rsync.py take from this
# file (they load it under a name of their own).
__all__ = ['Database', 'MariaDB', 'Runner', '_free_port', 'pymysql']


@pytest.fixture(scope='session')
def mariadb():
    server = MariaDB()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def db(mariadb):
    d = Database(mariadb)
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def empty_db(mariadb):
    d = Database(mariadb, with_schema=False)
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def ansible(mariadb, tmp_path):
    return Runner(mariadb, tmp_path)


@pytest.fixture(scope='session')
def _galera_session():
    """One three-node Galera cluster per session (per xdist worker that
    asks for it): about 20 s to start (mailstack_testlib.galera)."""
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def galera(_galera_session):
    """The session's cluster, healed before the test (every node running,
    Synced, in one cluster: a test may leave it broken)."""
    _galera_session.heal()
    return _galera_session
