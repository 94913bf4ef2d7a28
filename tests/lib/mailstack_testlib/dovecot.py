# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Dovecot of a test's own (a master in a temporary directory, no
listener) that authenticates through the role's SQL file: what Dovecot
itself does with the file's connect line and queries, asked by
`doveadm auth test`."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shutil
import subprocess

import pytest

CONF = """\
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
protocols =
ssl = no
auth_mechanisms = plain
auth_debug = yes
passdb {{
  driver = sql
  args = {tmp}/dovecot-sql.conf.ext
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={tmp}/home/%u
}}
"""

MYSQL_DRIVERS = ('/usr/lib/dovecot/modules/auth/libdriver_mysql.so', '/usr/lib/dovecot/modules/libdriver_mysql.so')


def require():
    """Fails the test (not skips it) when Dovecot or its MySQL driver is missing."""
    if not shutil.which('dovecot') or not any(os.path.exists(path) for path in MYSQL_DRIVERS):
        pytest.fail('Dovecot with MySQL missing: run scripts/test-host-packages.sh (dovecot-mysql)')


def write_conf(tmp, sql_conf):
    """Writes into tmp a Dovecot whose passdb is sql_conf (the rendered
    dovecot-sql.conf.ext); the path of its dovecot.conf."""
    for sub_dir in ('run', 'state'):
        os.makedirs(os.path.join(tmp, sub_dir), exist_ok=True)
    with open(os.path.join(tmp, 'dovecot-sql.conf.ext'), 'w') as f:
        f.write(sql_conf)
    conf = os.path.join(tmp, 'dovecot.conf')
    with open(conf, 'w') as f:
        f.write(CONF.format(tmp=tmp))
    return conf


def auth_test(conf, user='u@example.test', password='x'):
    """One `doveadm auth test` against the running Dovecot of conf."""
    return subprocess.run(['doveadm', '-c', conf, 'auth', 'test', user, password],
                          capture_output=True, text=True, timeout=60, check=False)


def start(conf):
    subprocess.run(['dovecot', '-c', conf], check=True, timeout=60)


def stop(conf):
    subprocess.run(['doveadm', '-c', conf, 'stop'], timeout=60, check=False)
