# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running Ansible from the tests and benchmarks: the one environment, the
one way of finding ansible-playbook and ansible, and of reading what they
report (the output and PLAY RECAP, or the json callback's report)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile

# tests/lib/mailstack_testlib/runner.py -> the checkout
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# The directory of the running Python: the venv's binaries.
BIN = os.path.dirname(sys.executable)
# ansible.cfg of the checkout (make demo, make test, the benchmarks).
CONFIG = os.path.join(REPO, 'ansible.cfg')
# Settings for the json stdout callback: its report is the whole stdout (ad
# hoc commands load callbacks only when told; no other callback may print).
JSON_CALLBACK = dict(ANSIBLE_STDOUT_CALLBACK='ansible.posix.json', ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
                     ANSIBLE_CALLBACKS_ENABLED=None)

_collections = []


def _find_collections_path():
    parts = REPO.split(os.sep)
    if len(parts) >= 3 and parts[-3] == 'ansible_collections':
        return os.sep.join(parts[:-3])
    cache = os.path.join(REPO, '.cache', 'collections')
    link = os.path.join(cache, 'ansible_collections', 'mailops', 'mailstack')
    if os.path.exists(link) and os.path.samefile(link, REPO):
        return cache
    tmp = tempfile.mkdtemp(prefix='mailstack-collections-')
    os.makedirs(os.path.join(tmp, 'ansible_collections', 'mailops'))
    os.symlink(REPO, os.path.join(tmp, 'ansible_collections', 'mailops', 'mailstack'))
    atexit.register(shutil.rmtree, tmp, True)
    return tmp


def collections_path():
    """A directory holding ansible_collections/mailops/mailstack -> this checkout.

    scripts/setup.sh links the checkout into .cache/collections; without that
    link (or when the checkout already sits in an ansible_collections tree)
    this still works, so CI can clone anywhere: a link in a temporary
    directory, removed when the process exits.
    """
    if not _collections:
        _collections.append(_find_collections_path())
    return _collections[0]


def binary(name):
    """The path of an Ansible command (ansible-playbook, ansible,
    ansible-inventory): the venv's, beside the running Python, else the
    first on PATH."""
    path = os.path.join(BIN, name)
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    found = shutil.which(name)
    if found is None:
        raise RuntimeError('%s is neither beside %s nor on PATH: run scripts/setup.sh' % (name, sys.executable))
    return found


def ansible_env(config=None, **settings):
    """os.environ for an Ansible command: this collection first on
    ANSIBLE_COLLECTIONS_PATH (before those the environment names), no
    colour, the venv's binaries first on PATH; ANSIBLE_CONFIG=config when
    given (else as the environment has it: Molecule sets its own). Each
    keyword sets that variable; None removes it."""
    env = dict(os.environ)
    paths = []
    for path in [collections_path()] + env.get('ANSIBLE_COLLECTIONS_PATH', '').split(os.pathsep):
        if path and path not in paths:
            paths.append(path)
    env.update(ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(paths), ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0')
    if env.get('PATH', '').split(os.pathsep)[0] != BIN:
        env['PATH'] = os.pathsep.join([BIN] + [p for p in [env.get('PATH')] if p])
    if config is not None:
        env['ANSIBLE_CONFIG'] = str(config)
    for key, value in settings.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def _run(command, args, env, cwd, timeout, stdout, stderr, input_text):
    return subprocess.run([binary(command)] + [str(a) for a in args], env=ansible_env() if env is None else env,
                          cwd=None if cwd is None else str(cwd), input=input_text, stdout=stdout, stderr=stderr,
                          universal_newlines=True, timeout=timeout, check=False)


def playbook(*args, env=None, cwd=None, timeout=None, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
             input_text=None):
    """ansible-playbook ARGS (options, inventories, playbooks, in the order
    given) with env (default: ansible_env()); the finished process
    (returncode, stdout, stderr as text). stdout and stderr as for
    subprocess.run: a file, or subprocess.STDOUT to merge them."""
    return _run('ansible-playbook', args, env, cwd, timeout, stdout, stderr, input_text)


def adhoc(*args, env=None, cwd=None, timeout=None):
    """`ansible ARGS` (an ad hoc command) with env (default:
    ansible_env()); the finished process."""
    return _run('ansible', args, env, cwd, timeout, subprocess.PIPE, subprocess.PIPE, None)


def recap(output, host):
    """The PLAY RECAP counters of host in an ansible-playbook output, as
    strings: {'ok': '3', 'changed': '0', ...}."""
    line = [entry for entry in output.splitlines() if entry.startswith(host + " ")][-1]
    return dict(part.split("=") for part in line.split(":", 1)[1].split())


def json_report(stdout):
    """The json callback's report in a command's stdout (the last thing
    printed there, after any warning lines); ValueError when there is none."""
    start = stdout.find('\n{')
    return json.loads(stdout if stdout.startswith('{') or start < 0 else stdout[start + 1:])


def playbook_report(*args, config=None, env=None, cwd=None, timeout=None):
    """ansible-playbook ARGS with the json callback (env default:
    ansible_env(config) with JSON_CALLBACK): (its report, or None when it
    printed none, the finished process)."""
    env = ansible_env(config, **JSON_CALLBACK) if env is None else env
    proc = playbook(*args, env=env, cwd=cwd, timeout=timeout)
    try:
        return json_report(proc.stdout), proc
    except ValueError:
        return None, proc


def module(inventory, host, name, args, config=None, env=None, cwd=None, timeout=None):
    """Runs module NAME with ARGS (a dict) on one host of inventory, ad hoc
    with the json callback (env as for playbook_report): (its result, or
    None when there is none, the finished process)."""
    env = ansible_env(config, **JSON_CALLBACK) if env is None else env
    proc = adhoc('-i', inventory, host, '-m', name, '-a', json.dumps(args), env=env, cwd=cwd, timeout=timeout)
    try:
        return json_report(proc.stdout)['plays'][0]['tasks'][0]['hosts'][host], proc
    except (ValueError, KeyError, IndexError):
        return None, proc


def task_results(report):
    """(host, task name, result) of each task of a json callback report, in
    the order run (hosts sorted within a task)."""
    for play in report.get('plays', []):
        for task in play.get('tasks', []):
            for host, result in sorted(task.get('hosts', {}).items()):
                yield host, task['task']['name'], result
