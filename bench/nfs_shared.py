# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: what the NFS store costs a mail server, on the converged
`nfs_shared` scenario (ms1, a VM with the store mounted from nfs1), each
figure against the same VM's local disk in the same run.

- nfs_vs_local_delivery: messages per second delivered into a Maildir by
  Dovecot's LDA (dovecot-lda, one process per message, with the topology's
  settings: mail_fsync=always, mmap_disable) on the NFS store, over the same
  into a Maildir on ms1's local disk (mail_location overridden for the
  run), in alternating blocks.
- nfs_vs_local_fetch: IMAP FETCH of every message (FETCH messages of about
  SIZE bytes, imported once on each side) through Dovecot's imap process,
  local time over NFS time (a ratio under 1: NFS is slower), ms1's page
  cache dropped before each fetch (every read goes to its disk or to nfs1).

Both are ratios, so the lab's speed (QEMU software emulation, every VM on
the same 2 cores) cancels out as far as it can: what stays is what NFS adds
on the same emulated CPU (RPC round trips, nfs1's sync writes). The
benchmark's user (bench-nfs@DOMAIN) lives on ms1; its mailboxes are removed
after. Prints one JSON object as its last line.

Usage: bench/run nfs_shared [--smoke] [--inventory PATH] [--messages N] [--fetch N] [--rounds N]
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import json
import os

from benchlib import REPO, inventory_hostvars, make_log, module, run

log = make_log('nfs_shared')
INVENTORY = os.path.join(REPO, '.cache', 'molecule', 'nfs_shared', 'inventory')
SERVER = 'ms1'
PASSWORD = 'bench-nfs-password'
LOCAL = '/var/tmp/bench-local/Maildir'
SIZE = 5120
FULL = dict(messages=200, fetch=1000, rounds=3)
SMOKE = dict(messages=20, fetch=100, rounds=1)
# Floors of the smoke run: a ratio this low means something is wrong with the
# lab, not that NFS is slow.
SMOKE_FLOORS = {'nfs_vs_local_delivery': 0.05, 'nfs_vs_local_fetch': 0.02}

# On ms1: BLOCK deliveries with dovecot-lda to the user, into the store (no
# override) or the local Maildir; prints the seconds. argv: user where count
DELIVER = r'''
import subprocess, sys, time
user, where, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = ('x' * 76 + '\n') * (%d // 77)
extra = [] if where == 'nfs' else ['-o', 'mail_location=maildir:%s']
start = time.time()
for i in range(count):
    msg = 'From: sender@outside.test\nTo: %%s\nSubject: bench %%s %%d\n\n%%s' %% (user, where, i, body)
    subprocess.run(['/usr/lib/dovecot/dovecot-lda', '-d', user, '-f', 'sender@outside.test'] + extra,
                   input=msg.encode(), check=True)
print(time.time() - start)
''' % (SIZE, LOCAL)

# On ms1: an mbox of COUNT messages imported into the user's INBOX on both
# sides (one doveadm process each), so that the fetch reads the same mail.
FILL = r'''
import os, subprocess, sys
user, count = sys.argv[1], int(sys.argv[2])
os.makedirs('/var/tmp/bench-mbox', exist_ok=True)
body = ('x' * 76 + '\n') * (%d // 77)
with open('/var/tmp/bench-mbox/inbox', 'w') as f:
    for i in range(count):
        f.write('From sender@outside.test Thu Jan  1 00:00:00 2026\nFrom: sender@outside.test\n'
                'Subject: fetch %%d\nMessage-ID: <fetch-%%d@outside.test>\n\n%%s\n' %% (i, i, body))
os.chmod('/var/tmp/bench-mbox', 0o755)
os.chmod('/var/tmp/bench-mbox/inbox', 0o644)
# Its index in memory: the mail user cannot write beside the mbox, and
# without an index doveadm imports nothing and still exits 0.
src = 'mbox:/var/tmp/bench-mbox:INBOX=/var/tmp/bench-mbox/inbox:INDEX=MEMORY'
for extra in ([], ['-o', 'mail_location=maildir:%s']):
    subprocess.run(['doveadm'] + extra + ['import', '-u', user, src, '', 'all'], check=True)
    status = subprocess.run(['doveadm'] + extra + ['-f', 'tab', 'mailbox', 'status', '-u', user, 'messages', 'INBOX'],
                            check=True, capture_output=True, text=True).stdout.split()
    if status[-1] != str(count):
        sys.exit('doveadm import (%%s): INBOX has %%s messages, not %%d'
                 %% (' '.join(extra) or 'the store', status[-1], count))
''' % (SIZE, LOCAL)

# On ms1: one IMAP session (Dovecot's imap process, preauthenticated) that
# selects INBOX and fetches every message, after dropping the page cache;
# prints the seconds and the messages fetched. argv: user where
FETCH = r'''
import json, subprocess, sys, time
user, where = sys.argv[1], sys.argv[2]
extra = [] if where == 'nfs' else ['-o', 'mail_location=maildir:%s']
subprocess.run(['sync'], check=True)
with open('/proc/sys/vm/drop_caches', 'w') as f:
    f.write('3\n')
start = time.time()
# -o goes to the imap process itself (doveadm's own -o stays in doveadm).
out = subprocess.run(['doveadm', 'exec', 'imap', '-u', user] + extra,
                     input=b'a SELECT INBOX\r\nb FETCH 1:* (UID FLAGS BODY.PEEK[])\r\nc LOGOUT\r\n',
                     capture_output=True, check=True).stdout
seconds = time.time() - start
# The seconds, the messages fetched, and what imap said last (for an error).
print(json.dumps([seconds, out.count(b' FETCH (UID '), out[-400:].decode('utf-8', 'replace')]))
''' % LOCAL


class Server(object):
    """ms1 over SSH, with the scenario's key."""

    def __init__(self, hostvars, inventory):
        self.address = hostvars[SERVER]['mailstack_lab_vm']['address']
        self.key = os.path.join(os.path.dirname(os.path.abspath(inventory)), 'lab_ssh_key')

    def python(self, code, *args, **kwargs):
        cmd = ['ssh', '-i', self.key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
               '-o', 'LogLevel=ERROR', 'root@%s' % self.address, 'python3', '-'] + [str(a) for a in args]
        return run(cmd, input_text=code, timeout=kwargs.get('timeout', 3600)).stdout

    def sh(self, script):
        return self.python('import subprocess, sys\nsys.exit(subprocess.run(%r, shell=True).returncode)\n' % script)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--smoke', action='store_true', help='a small run that proves the benchmark works')
    parser.add_argument('--inventory', default=INVENTORY)
    parser.add_argument('--messages', type=int, help='deliveries per side and round')
    parser.add_argument('--fetch', type=int, help='messages in the fetched mailbox')
    parser.add_argument('--rounds', type=int)
    args = parser.parse_args()
    size = dict(SMOKE if args.smoke else FULL)
    for name in size:
        if getattr(args, name) is not None:
            size[name] = getattr(args, name)

    hostvars = inventory_hostvars(args.inventory, [])
    for name in ('ns1', SERVER):
        if name not in hostvars:
            raise SystemExit('%s has no host %s: is it the nfs_shared lab?' % (args.inventory, name))
    domain = hostvars[SERVER].get('mailstack_domain', 'example.test')
    user = 'bench-nfs@%s' % domain
    server = Server(hostvars, args.inventory)

    log('user %s on %s' % (user, SERVER))
    module(args.inventory, 'ns1', 'mailops.mailstack.mail_user',
           {'email': user, 'password': PASSWORD, 'mailbox_host': SERVER, 'login_unix_socket': '/run/mysqld/mysqld.sock'})
    server.sh('install -d -o 5000 -g 5000 -m 0750 /var/tmp/bench-local')
    figures = {}
    try:
        times = {'nfs': 0.0, 'local': 0.0}
        for r in range(size['rounds']):
            for where in ('nfs', 'local') if r % 2 == 0 else ('local', 'nfs'):
                seconds = float(server.python(DELIVER, user, where, size['messages']).split()[-1])
                times[where] += seconds
                log('round %d: %d deliveries into %s in %.1f s' % (r + 1, size['messages'], where, seconds))
        count = size['messages'] * size['rounds']
        rates = dict((where, count / seconds) for where, seconds in times.items())
        figures.update({'delivered_per_side': count,
                        'delivery_per_second_nfs': round(rates['nfs'], 2),
                        'delivery_per_second_local': round(rates['local'], 2),
                        'nfs_vs_local_delivery': round(rates['nfs'] / rates['local'], 3)})

        # The fetched mailbox: only the imported messages.
        server.sh("doveadm expunge -u %s mailbox INBOX all && "
                  "doveadm -o mail_location=maildir:%s expunge -u %s mailbox INBOX all" % (user, LOCAL, user))
        server.python(FILL, user, size['fetch'])
        fetch = {'nfs': [], 'local': []}
        for r in range(size['rounds']):
            for where in ('nfs', 'local') if r % 2 == 0 else ('local', 'nfs'):
                seconds, n, said = json.loads(server.python(FETCH, user, where).splitlines()[-1])
                if n != size['fetch']:
                    raise SystemExit('fetched %s of %d messages from %s; imap ended with: %s'
                                     % (n, size['fetch'], where, said))
                fetch[where].append(float(seconds))
                log('round %d: FETCH of %s messages from %s in %.2f s' % (r + 1, n, where, float(seconds)))
        best = dict((where, min(values)) for where, values in fetch.items())
        figures.update({'fetched': size['fetch'], 'fetch_seconds_nfs': round(best['nfs'], 3),
                        'fetch_seconds_local': round(best['local'], 3),
                        'nfs_vs_local_fetch': round(best['local'] / best['nfs'], 3)})
    finally:
        server.sh('rm -rf /var/tmp/bench-local /var/tmp/bench-mbox')
        module(args.inventory, 'ns1', 'mailops.mailstack.mail_user',
               {'email': user, 'state': 'absent', 'login_unix_socket': '/run/mysqld/mysqld.sock'})
        # As the mail user: root is squashed on the store.
        server.sh("runuser -u vmail -- rm -rf /srv/mailstore/vmail/%s/bench-nfs" % domain)

    if args.smoke:
        low = dict((k, figures[k]) for k, floor in SMOKE_FLOORS.items() if figures[k] < floor)
        figures['smoke_floors'] = SMOKE_FLOORS
        if low:
            print(json.dumps(figures))
            raise SystemExit('below the smoke floors: %s' % low)
    print(json.dumps(figures))


if __name__ == '__main__':
    main()
