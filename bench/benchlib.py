# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the lab benchmarks share: running commands, shell scripts in lab
containers, smtp-source from the lab's internet host, reading a converged
lab's inventory, and a module ad hoc. Ansible runs through mailstack_testlib
(tests/lib), which bench/run puts on PYTHONPATH."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import json
import os
import subprocess
import sys
import time

import mailstack_testlib as testlib

REPO = testlib.REPO
SENDER = 'sender@outside.test'

# Host name -> container name; each benchmark fills it.
CONTAINERS = {}


def make_log(name):
    def log(msg):
        sys.stderr.write('[%s] %s\n' % (name, msg))
        sys.stderr.flush()
    return log


def run(cmd, check=True, input_text=None, timeout=None, env=None):
    proc = subprocess.run(cmd, input=input_text, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout, check=False, env=env)
    if check and proc.returncode != 0:
        raise SystemExit('command failed (rc %d): %s\n%s%s'
                         % (proc.returncode, ' '.join(cmd), proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc


def sh(host, script, check=True, input_text=None, timeout=None):
    """Runs a shell script in a lab container."""
    return run(['podman', 'exec', '-i', CONTAINERS[host], 'sh', '-c', script], check=check,
               input_text=input_text, timeout=timeout)


def address(host):
    return sh(host, "hostname -I | cut -d' ' -f1").stdout.strip()


def smtp_source(target, rcpt, messages, sessions, size, lmtp=False):
    """Runs Postfix's smtp-source on outside1 (SMTP, or LMTP with lmtp=True);
    returns its wall time."""
    start = time.time()
    proc = sh('outside1', '/usr/sbin/smtp-source %s-s %d -m %d -l %d -f %s -t %s %s' % (
        '-L ' if lmtp else '', sessions, messages, size, SENDER, rcpt, target), check=False, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit('smtp-source to %s failed: %s%s' % (target, proc.stdout[-2000:], proc.stderr[-2000:]))
    return time.time() - start


def wait_queue_empty(host, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not sh(host, 'postqueue -j').stdout.strip():
            return
        time.sleep(0.5)
    raise SystemExit('the queue of %s did not drain in %d s' % (host, timeout))


def without_filter(hosts, fn):
    """Runs fn with the hosts' content_filter emptied; each main.cf is
    restored byte for byte after."""
    for host in hosts:
        sh(host, 'cp -p /etc/postfix/main.cf /etc/postfix/main.cf.bench-saved && '
                 'postconf -e content_filter= && postfix reload')
    try:
        return fn()
    finally:
        for host in hosts:
            sh(host, 'mv /etc/postfix/main.cf.bench-saved /etc/postfix/main.cf && postfix reload')


def inventory_hostvars(inventory, names):
    """The hostvars of a converged lab's inventory; CONTAINERS gets each
    named host's container."""
    listing = json.loads(run([testlib.binary('ansible-inventory'), '-i', inventory, '--list']).stdout)
    hostvars = listing.get('_meta', {}).get('hostvars', {})
    for name in names:
        if name not in hostvars:
            raise SystemExit('%s has no host %s: is it the inventory of the right lab?' % (inventory, name))
        CONTAINERS[name] = hostvars[name].get('ansible_host', name)
    return hostvars


def module(inventory, host, name, args):
    """Runs one module on one host (ansible ad hoc); returns its result and
    the command's wall time. Fails on a failed result."""
    start = time.time()
    result, proc = testlib.module(inventory, host, name, args, config=testlib.CONFIG, timeout=3600)
    seconds = time.time() - start
    if result is None:
        raise SystemExit('%s on %s: no result (rc %d): %s%s'
                         % (name, host, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    if result.get('failed') or result.get('unreachable'):
        raise SystemExit('%s on %s failed: %s' % (name, host, result.get('msg', result)))
    return result, seconds


def cpu_seconds(host):
    """CPU time the host's container has used so far (its cgroup's, v2 or v1)."""
    path = run(['podman', 'inspect', '--format', '{{.State.CgroupPath}}', CONTAINERS[host]]).stdout.strip()
    for stat in ('/sys/fs/cgroup%s/cpu.stat' % path, '/sys/fs/cgroup/unified%s/cpu.stat' % path):
        if os.path.exists(stat):
            with open(stat) as f:
                for line in f:
                    if line.startswith('usage_usec '):
                        return int(line.split()[1]) / 1e6
    with open('/sys/fs/cgroup/cpuacct%s/cpuacct.usage' % path) as f:
        return int(f.read()) / 1e9


def lab_args(doc, inventory, full, smoke, smoke_help):
    """A lab benchmark's command line: --smoke, --inventory and one integer
    option per size (FULL's keys); (args, sizes), sizes from FULL or SMOKE
    with the given options over them."""
    parser = argparse.ArgumentParser(description=doc.split('\n', maxsplit=1)[0])
    parser.add_argument('--smoke', action='store_true', help=smoke_help)
    parser.add_argument('--inventory', default=inventory, help='the converged scenario\'s inventory')
    for key in full:
        parser.add_argument('--' + key, type=int,
                            help='%s (default %d, %d with --smoke)' % (key, full[key], smoke[key]))
    args = parser.parse_args()
    sizes = dict(smoke if args.smoke else full)
    sizes.update((k, getattr(args, k)) for k in full if getattr(args, k))
    return args, sizes
