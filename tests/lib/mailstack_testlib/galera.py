# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A throw-away MariaDB Galera cluster of three nodes for the tests (issue
28, step H of docs/design/no-spof-plan.md).

Each node is Debian's ``mariadbd --no-defaults`` with galera-4's provider
(Debian's mariadb-server depends on galera-4, rsync and socat), run as the
``mysql`` user when the tests run as root (an rsync SST fails between nodes
run as root: the data directory must be the server user's, as Debian's
service has it). Every node has its own loopback address (127.0.3.1-3, the
same interface) and all use the same four free ports there: SQL,
the group (gmcast), IST and the SST receiver, as three hosts would; the
modules' list of hosts then takes one login_port. SST by rsync (the role
uses mariabackup over TLS; the harness proves Galera's behaviour, not the
role's transport).

What it does: bootstrap (``--wsrep-new-cluster``) and join one node at a
time, kill (SIGKILL), stop (SIGTERM), pause/resume (SIGSTOP/SIGCONT: the
others lose it, a partition without root's network tools), read and write
``grastate.dat``, ``--wsrep-recover`` (the position a crashed node logs),
status, and a ``heal`` that brings every node back and Synced after a test
(xdist-safe: each worker that uses it has a cluster of its own).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from .mariadb import ADMIN_PASSWORD, ADMIN_USER, DB_NAME, _which, pymysql

PROVIDER = '/usr/lib/galera/libgalera_smm.so'
CLUSTER_NAME = 'mailstack-test'
ADDRESSES = ('127.0.3.1', '127.0.3.2', '127.0.3.3')
# Quick failure detection (defaults: 5 s suspect, 15 s inactive): a paused
# or killed node leaves the view in seconds. keepalive <= check period <=
# suspect <= inactive, as the provider requires.
EVS = 'evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S;evs.suspect_timeout=PT2S;' \
      'evs.inactive_timeout=PT4S;evs.install_timeout=PT4S;evs.join_retrans_period=PT0.5S'
# The decision function's statuses (module_utils/galera.py reads the same).
RECOVERED = re.compile(r'WSREP: Recovered position:\s+([0-9a-f-]{36}):(-?\d+)')


def free_ports(addresses, count):
    """count ports, each free on every one of addresses."""
    ports = []
    tries = 0
    while len(ports) < count:
        tries += 1
        if tries > 200:
            raise RuntimeError('no free port common to %s' % ', '.join(addresses))
        s = socket.socket()
        s.bind((addresses[0], 0))
        port = s.getsockname()[1]
        s.close()
        if port in ports:
            continue
        ok = True
        for address in addresses[1:]:
            t = socket.socket()
            try:
                t.bind((address, port))
            except OSError:
                ok = False
            finally:
                t.close()
        if ok:
            ports.append(port)
    return ports


def read_grastate(path):
    """grastate.dat as a dict: uuid, seqno (int), safe_to_bootstrap (int);
    {} when there is none."""
    if not os.path.exists(path):
        return {}
    state = {}
    with open(path) as f:
        for line in f:
            if ':' in line and not line.startswith('#'):
                key, value = line.split(':', 1)
                state[key.strip()] = value.strip()
    for key in ('seqno', 'safe_to_bootstrap'):
        if key in state:
            state[key] = int(state[key])
    return state


class Node(object):
    def __init__(self, cluster, index, address):
        self.cluster = cluster
        self.index = index
        self.name = 'node%d' % (index + 1)
        self.address = address
        self.dir = os.path.join(cluster.tmp, self.name)
        self.datadir = os.path.join(self.dir, 'data')
        self.socket = os.path.join(self.dir, 'mysqld.sock')
        self.log = os.path.join(self.dir, 'mysqld.log')
        # The server's temporary files in the node's own directory, not in
        # the shared /tmp: the units stage once saw mariadb-install-db fail
        # there ("Could not remove temporary table '/tmp/#sql-temptable-...',
        # error: 2", then "Unknown table 'mysql.tmp_proxies_priv'") while
        # other processes used /tmp.
        self.tmpdir = os.path.join(self.dir, 'tmp')
        self.proc = None

    # --- the data directory ---

    def install(self):
        if os.path.exists(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.tmpdir)
        self.cluster.own(self.dir)
        with open(os.path.join(self.dir, 'install.log'), 'w') as log:
            rc = subprocess.call([self.cluster.install_db, '--no-defaults', '--datadir=' + self.datadir,
                                  '--auth-root-authentication-method=normal', '--skip-test-db',
                                  '--skip-name-resolve', '--tmpdir=' + self.tmpdir] + self.cluster.user_args,
                                 stdout=log, stderr=subprocess.STDOUT)
        if rc != 0:
            with open(os.path.join(self.dir, 'install.log')) as f:
                pytest.fail('mariadb-install-db failed:\n' + f.read()[-3000:])
        self.cluster.own(self.dir)

    @property
    def grastate_path(self):
        return os.path.join(self.datadir, 'grastate.dat')

    def grastate(self):
        return read_grastate(self.grastate_path)

    def set_safe_to_bootstrap(self, value):
        with open(self.grastate_path) as f:
            text = f.read()
        text = re.sub(r'(?m)^safe_to_bootstrap:.*$', 'safe_to_bootstrap: %d' % value, text)
        with open(self.grastate_path, 'w') as f:
            f.write(text)

    # --- the server ---

    def command(self, extra=()):
        c = self.cluster
        return [c.mariadbd, '--no-defaults', '--datadir=' + self.datadir, '--socket=' + self.socket,
                '--port=%d' % c.sql_port, '--bind-address=' + self.address, '--skip-networking=0',
                '--pid-file=' + os.path.join(self.dir, 'mysqld.pid'), '--log-error=' + self.log,
                '--skip-name-resolve', '--tmpdir=' + self.tmpdir, '--server-id=%d' % (self.index + 1),
                '--innodb-buffer-pool-size=64M', '--innodb-log-file-size=48M',
                '--innodb-flush-log-at-trx-commit=2', '--max-connections=60',
                '--character-set-server=utf8mb4', '--collation-server=utf8mb4_unicode_ci',
                '--binlog-format=ROW', '--default-storage-engine=InnoDB', '--innodb-autoinc-lock-mode=2',
                '--wsrep-on=ON', '--wsrep-provider=' + PROVIDER, '--wsrep-cluster-name=' + CLUSTER_NAME,
                '--wsrep-cluster-address=' + c.cluster_address(),
                '--wsrep-node-name=' + self.name, '--wsrep-node-address=%s:%d' % (self.address, c.gmcast_port),
                '--wsrep-sst-method=rsync', '--wsrep-sst-receive-address=%s:%d' % (self.address, c.sst_port),
                '--wsrep-provider-options=gmcast.listen_addr=tcp://%s:%d;ist.recv_addr=%s:%d;gcache.size=32M;%s'
                % (self.address, c.gmcast_port, self.address, c.ist_port, EVS)] + c.user_args + list(extra)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, bootstrap=False, wait=True, timeout=120):
        """Start the node (bootstrap: a new cluster from it); wait until it
        is Synced. Returns the process."""
        env = dict(os.environ, PATH='/usr/sbin:/usr/bin:/sbin:/bin:' + os.environ.get('PATH', ''))
        self.proc = subprocess.Popen(self.command(['--wsrep-new-cluster'] if bootstrap else []),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, env=env)
        if wait:
            self.wait_synced(timeout)
        return self.proc

    def wait_synced(self, timeout=120):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                self.fail('%s exited with %s' % (self.name, self.proc and self.proc.returncode))
            try:
                last = self.status('wsrep_local_state_comment')
                if last == 'Synced' and self.status('wsrep_ready') == 'ON':
                    return
            except pymysql.err.MySQLError as e:
                last = str(e)
            time.sleep(0.3)
        self.fail('%s not Synced within %d s (last: %s)' % (self.name, timeout, last))

    def wait_exit(self, timeout=60):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail('%s did not exit within %d s' % (self.name, timeout))

    def signal(self, sig):
        if self.running():
            os.killpg(self.proc.pid, sig)

    def kill(self):
        """SIGKILL: a crash (grastate seqno -1)."""
        if self.running():
            self.signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout=60):
        """SIGTERM: a clean shutdown (grastate keeps the seqno)."""
        if self.running():
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def pause(self):
        self.signal(signal.SIGSTOP)

    def resume(self):
        self.signal(signal.SIGCONT)

    def recover_command(self):
        """--wsrep-recover with the node's options, its log on stderr (what
        galera_node's recover_command runs here; Debian's galera_recovery
        on a real host)."""
        return [a for a in self.command() if not a.startswith('--log-error=')] + ['--wsrep-recover']

    def recover(self):
        """(uuid, seqno) that ``mariadbd --wsrep-recover`` logs for a
        stopped node (what galera_recovery does on every start)."""
        assert not self.running()
        log = os.path.join(self.dir, 'recover.log')
        cmd = [a for a in self.command() if not a.startswith('--log-error=')]
        subprocess.call(cmd + ['--wsrep-recover', '--log-error=' + log],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        with open(log) as f:
            found = RECOVERED.findall(f.read())
        return (found[-1][0], int(found[-1][1])) if found else (None, None)

    def root(self, database=None, timeout=5):
        return pymysql.connect(unix_socket=self.socket, user='root', password='', database=database,
                               autocommit=True, charset='utf8mb4', connect_timeout=timeout,
                               read_timeout=30, write_timeout=30)

    def admin(self, autocommit=False):
        """The mail admin account over TCP to this node's address."""
        return pymysql.connect(host=self.address, port=self.cluster.sql_port, user=ADMIN_USER,
                               password=ADMIN_PASSWORD, database=DB_NAME, autocommit=autocommit,
                               charset='utf8mb4', connect_timeout=5, read_timeout=30)

    def status(self, name):
        conn = self.root()
        try:
            with conn.cursor() as cur:
                cur.execute('SHOW GLOBAL STATUS LIKE %s', (name,))
                row = cur.fetchone()
                return row[1] if row else None
        finally:
            conn.close()

    def log_text(self):
        if not os.path.exists(self.log):
            return ''
        with open(self.log, errors='replace') as f:
            return f.read()

    def fail(self, msg):
        pytest.fail('%s\n--- %s log (end) ---\n%s' % (msg, self.name, self.log_text()[-4000:]))


class ConfiguredNode(Node):
    """A node whose settings are an option file (the role's rendered
    configuration: Galera's default ports on the node's own address), with
    only what places the node in the harness on the command line."""

    @property
    def defaults_file(self):
        return os.path.join(self.dir, 'node.cnf')

    def install(self):
        Node.install(self)
        with open(self.defaults_file, 'w') as f:
            f.write(self.cluster.configure(self))
        self.cluster.own(self.dir)

    def command(self, extra=()):
        c = self.cluster
        return [c.mariadbd, '--defaults-file=' + self.defaults_file, '--datadir=' + self.datadir,
                '--socket=' + self.socket, '--pid-file=' + os.path.join(self.dir, 'mysqld.pid'),
                '--log-error=' + self.log, '--tmpdir=' + self.tmpdir] + c.user_args + list(extra)


class Cluster(object):
    """Three nodes on 127.0.3.1-3; start() bootstraps the first and joins
    the others one at a time, then makes the mail admin account (replicated:
    written once) and the mail database with its schema."""

    node_class = Node

    def __init__(self, size=3, addresses=ADDRESSES, ports=None):
        self.mariadbd = _which('mariadbd') or _which('mysqld')
        self.install_db = _which('mariadb-install-db') or _which('mysql_install_db')
        if not (self.mariadbd and self.install_db and pymysql and os.path.exists(PROVIDER)):
            pytest.fail('MariaDB server, galera-4 or PyMySQL missing: run scripts/test-host-packages.sh '
                        '(Debian: mariadb-server, which depends on galera-4) and install requirements.txt')
        self.tmp = tempfile.mkdtemp(prefix='mailstack-galera-')
        os.chmod(self.tmp, 0o755)
        if os.geteuid() == 0:
            user = pwd.getpwnam('mysql')
            self.uid, self.gid = user.pw_uid, user.pw_gid
            self.user_args = ['--user=mysql']
        else:
            self.uid = self.gid = None
            self.user_args = []
        self.addresses = tuple(addresses[:size])
        self.sql_port, self.gmcast_port, self.ist_port, self.sst_port = ports or free_ports(self.addresses, 4)
        self.nodes = [self.node_class(self, i, a) for i, a in enumerate(self.addresses)]

    def own(self, path):
        if self.uid is None:
            return
        for top, dirs, files in os.walk(path):
            os.chown(top, self.uid, self.gid)
            for name in files:
                os.chown(os.path.join(top, name), self.uid, self.gid)

    def cluster_address(self):
        return 'gcomm://' + ','.join('%s:%d' % (a, self.gmcast_port) for a in self.addresses)

    def start(self):
        for node in self.nodes:
            node.install()
        self.nodes[0].start(bootstrap=True)
        for node in self.nodes[1:]:
            node.start()
        self.setup_mail()
        return self

    def setup_mail(self):
        from ansible_collections.mailops.mailstack.plugins.module_utils import schema
        conn = self.nodes[0].root()
        try:
            with conn.cursor() as cur:
                cur.execute('CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'
                            % DB_NAME)
                # A connection to 127.0.3.x comes from 127.0.0.1 (lo's first address).
                for host in ('localhost', '127.0.0.1') + tuple(self.addresses):
                    cur.execute("CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s'"
                                % (ADMIN_USER, host, ADMIN_PASSWORD))
                    cur.execute("GRANT ALL ON `%s`.* TO '%s'@'%s'" % (DB_NAME, ADMIN_USER, host))
        finally:
            conn.close()
        conn = self.nodes[0].root(DB_NAME)
        try:
            schema.migrate(conn)
        finally:
            conn.close()

    def size(self, node=None):
        node = node or next(n for n in self.nodes if n.running())
        return int(node.status('wsrep_cluster_size'))

    def wait_size(self, node, size, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if int(node.status('wsrep_cluster_size')) == size:
                    return
            except pymysql.err.MySQLError:
                pass
            time.sleep(0.3)
        node.fail('%s: wsrep_cluster_size not %d within %d s' % (node.name, size, timeout))

    def login_hosts(self):
        return list(self.addresses)

    def heal(self):
        """Every node running, Synced, in one cluster of all: resume paused
        nodes, start stopped ones (joining a running Primary node); with
        none running, bootstrap from the most advanced (as the recovery
        playbook does: --wsrep-recover, safe_to_bootstrap 1 there)."""
        for node in self.nodes:
            node.resume()
        if self.healthy():
            return
        running = [n for n in self.nodes if n.running()]
        primary = [n for n in running if _quiet_status(n, 'wsrep_cluster_status') == 'Primary']
        if running and not primary:
            # A surviving non-Primary node (its peers gone): stop it too.
            for node in running:
                node.stop()
            running = []
        if not running:
            positions = []
            for node in self.nodes:
                state = node.grastate()
                seqno = state.get('seqno', -1)
                if seqno == -1:
                    seqno = node.recover()[1]
                positions.append((seqno if seqno is not None else -1, -node.index, node))
            first = max(positions, key=lambda p: p[:2])[2]
            first.set_safe_to_bootstrap(1)
            first.start(bootstrap=True)
        for node in self.nodes:
            if not node.running():
                node.start()
        for node in self.nodes:
            node.wait_synced()
        self.wait_size(self.nodes[0], len(self.nodes))

    def healthy(self):
        """Every node running, Primary and Synced, the cluster of all."""
        for node in self.nodes:
            if not node.running():
                return False
            try:
                if (node.status('wsrep_cluster_status') != 'Primary'
                        or node.status('wsrep_local_state_comment') != 'Synced'
                        or int(node.status('wsrep_cluster_size')) != len(self.nodes)):
                    return False
            except pymysql.err.MySQLError:
                return False
        return True

    def destroy(self):
        for node in self.nodes:
            node.resume()
            node.kill()
        # An SST's script and socat run in a session of their own: the
        # processes whose command line names this cluster's directory.
        for pid in _processes_naming(self.tmp):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def _processes_naming(text):
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as f:
                if text.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _quiet_status(node, name):
    try:
        return node.status(name)
    except pymysql.err.MySQLError:
        return None
