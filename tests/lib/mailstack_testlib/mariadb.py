# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real, throw-away MariaDB for the module tests and bench/run provision,
and a runner that calls the collection's modules through ansible-playbook
on localhost with that database's login.

The server is Debian's mariadbd (scripts/test-host-packages.sh installs it),
started in a temporary data directory, listening on 127.0.0.1:<free port>
and on a Unix socket in that directory; stop() stops it and removes the
directory.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from ansible_collections.mailops.mailstack.plugins.module_utils import schema

from .runner import ansible_env
from .runner import playbook as run_playbook

try:
    import pymysql
except ImportError:  # pragma: no cover
    pymysql = None

ADMIN_USER = 'mailadmin'
ADMIN_PASSWORD = 'Adm1n-pw-for-tests'
DB_NAME = 'mail'


def _which(name, *extra):
    for d in list(extra) + os.environ.get('PATH', '').split(os.pathsep) + ['/usr/sbin', '/usr/bin', '/sbin']:
        path = os.path.join(d, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class MariaDB(object):
    """A mariadbd in a temporary directory, on 127.0.0.1 and a free port
    unless bind and port say otherwise (several servers on one port, each on
    its own loopback address, for the modules' list of hosts); options: more
    mariadbd options, after (so over) the defaults below (a server id and a
    binary log for replication; bench/run scale sizes the buffer pool)."""

    def __init__(self, bind='127.0.0.1', port=None, options=()):
        self.mariadbd = _which('mariadbd') or _which('mysqld')
        self.install_db = _which('mariadb-install-db') or _which('mysql_install_db')
        if not (self.mariadbd and self.install_db and pymysql):
            pytest.fail('MariaDB server or PyMySQL missing: run scripts/test-host-packages.sh '
                        '(Debian: mariadb-server) and install requirements.txt into the venv')
        self.tmp = tempfile.mkdtemp(prefix='mailstack-mariadb-')
        os.chmod(self.tmp, 0o755)
        self.datadir = os.path.join(self.tmp, 'data')
        self.socket = os.path.join(self.tmp, 'mysqld.sock')
        self.log = os.path.join(self.tmp, 'mysqld.log')
        self.bind = bind
        self.port = port or _free_port()
        self.options = list(options)
        self.proc = None

    def _user_args(self):
        return ['--user=root'] if os.geteuid() == 0 else []

    def start(self):
        # Temporary files in the server's own directory, not the shared
        # /tmp (mailstack_testlib.galera says why).
        tmpdir = os.path.join(self.tmp, 'tmp')
        os.makedirs(tmpdir, exist_ok=True)
        with open(os.path.join(self.tmp, 'install.log'), 'w') as log:
            rc = subprocess.call([self.install_db, '--no-defaults', '--datadir=' + self.datadir,
                                  '--auth-root-authentication-method=normal', '--skip-test-db',
                                  '--skip-name-resolve', '--tmpdir=' + tmpdir] + self._user_args(),
                                 stdout=log, stderr=subprocess.STDOUT)
        if rc != 0:
            with open(os.path.join(self.tmp, 'install.log')) as f:
                pytest.fail('mariadb-install-db failed:\n' + f.read()[-3000:])
        cmd = [self.mariadbd, '--no-defaults', '--datadir=' + self.datadir, '--socket=' + self.socket,
               '--port=%d' % self.port, '--bind-address=' + self.bind, '--skip-networking=0',
               '--pid-file=' + os.path.join(self.tmp, 'mysqld.pid'), '--log-error=' + self.log,
               '--skip-name-resolve', '--tmpdir=' + tmpdir, '--innodb-buffer-pool-size=256M', '--innodb-log-file-size=256M',
               '--innodb-flush-log-at-trx-commit=2', '--max-connections=50',
               '--character-set-server=utf8mb4', '--collation-server=utf8mb4_unicode_ci'] + self.options
        cmd += self._user_args()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                self._fail('mariadbd exited with %s' % self.proc.returncode)
            try:
                conn = pymysql.connect(unix_socket=self.socket, user='root', password='', connect_timeout=2)
                break
            except pymysql.err.MySQLError:
                if time.time() > deadline:
                    self._fail('mariadbd did not accept connections within 60 s')
                time.sleep(0.2)
        with conn.cursor() as cur:
            for host in ('localhost', '127.0.0.1'):
                cur.execute("CREATE USER '%s'@'%s' IDENTIFIED BY '%s'" % (ADMIN_USER, host, ADMIN_PASSWORD))
                cur.execute("GRANT ALL ON `%s`.* TO '%s'@'%s'" % (DB_NAME, ADMIN_USER, host))
        conn.commit()
        conn.close()

    def _fail(self, msg):
        log = ''
        if os.path.exists(self.log):
            with open(self.log) as f:
                log = f.read()[-3000:]
        self.stop()
        pytest.fail('%s\n%s' % (msg, log))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def root(self, database=None):
        return pymysql.connect(unix_socket=self.socket, user='root', password='', database=database,
                               autocommit=True, charset='utf8mb4')

    def login_args(self, socket_path=False):
        args = dict(login_user=ADMIN_USER, login_password=ADMIN_PASSWORD, database=DB_NAME)
        if socket_path:
            args['login_unix_socket'] = self.socket
        else:
            args.update(login_host='127.0.0.1', login_port=self.port)
        return args


class Database(object):
    """The (reset) mail database of one test."""

    def __init__(self, server, with_schema=True):
        self.server = server
        conn = server.root()
        with conn.cursor() as cur:
            cur.execute('DROP DATABASE IF EXISTS `%s`' % DB_NAME)
            cur.execute('CREATE DATABASE `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci' % DB_NAME)
        conn.close()
        self.conn = server.root(DB_NAME)
        if with_schema:
            # the code path mail_schema uses
            schema.migrate(self.conn)

    def query(self, sql, args=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()

    def scalar(self, sql, args=None):
        rows = self.query(sql, args)
        return rows[0][0] if rows else None

    def execute(self, sql, args=None):
        with self.conn.cursor() as cur:
            return cur.execute(sql, args)

    def close(self):
        self.conn.close()


class Runner(object):
    """Runs mailops.mailstack modules through ansible-playbook on localhost."""

    def __init__(self, server, tmp):
        self.server = server
        self.tmp = str(tmp)
        cfg = os.path.join(self.tmp, 'ansible.cfg')
        with open(cfg, 'w') as f:
            f.write('[defaults]\nretry_files_enabled = False\n')
        self.env = ansible_env(config=cfg,
                               ANSIBLE_LOCALHOST_WARNING='False',
                               ANSIBLE_INVENTORY_UNPARSED_WARNING='False',
                               ANSIBLE_HOME=os.path.join(self.tmp, 'ansible-home'),
                               ANSIBLE_LOCAL_TEMP=os.path.join(self.tmp, 'ansible-local'),
                               ANSIBLE_REMOTE_TEMP=os.path.join(self.tmp, 'ansible-remote'),
                               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
        self.count = 0
        self.last_output = ''

    def tasks(self, tasks, verbosity=0, socket_path=False):
        """tasks: list of (module, args, opts) - opts: check_mode, diff, no_log. Returns results."""
        self.count += 1
        out = os.path.join(self.tmp, 'results-%d.json' % self.count)
        play_tasks = []
        for i, (module, args, opts) in enumerate(tasks):
            full = dict(self.server.login_args(socket_path=socket_path))
            full.update(args)
            t = {'name': 'task %d' % i, 'mailops.mailstack.%s' % module: full,
                 'register': 'r%d' % i, 'ignore_errors': True}
            for k in ('check_mode', 'diff', 'no_log'):
                if k in opts:
                    t[k] = opts[k]
            play_tasks.append(t)
        names = ', '.join('r%d' % i for i in range(len(tasks)))
        play_tasks.append({'name': 'save results', 'ansible.builtin.copy': {
            'content': '{{ [%s] | to_json }}' % names, 'dest': out, 'mode': '0600'}})
        play = os.path.join(self.tmp, 'play-%d.json' % self.count)
        with open(play, 'w') as f:
            json.dump([{'hosts': 'localhost', 'gather_facts': False, 'connection': 'local',
                        'tasks': play_tasks}], f)
        options = ['-' + 'v' * verbosity] if verbosity else []
        proc = run_playbook('-i', 'localhost,', play, *options, env=self.env, cwd=self.tmp, stderr=subprocess.STDOUT)
        self.last_output = proc.stdout
        if not os.path.exists(out):
            raise AssertionError('ansible-playbook failed (rc %d):\n%s' % (proc.returncode, proc.stdout[-5000:]))
        with open(out) as f:
            return json.load(f)

    def run(self, module, args, check_mode=False, diff=False, verbosity=0, socket_path=False):
        opts = {}
        if check_mode:
            opts['check_mode'] = True
        if diff:
            opts['diff'] = True
        return self.tasks([(module, args, opts)], verbosity=verbosity, socket_path=socket_path)[0]
