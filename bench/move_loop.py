# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the race of a move under load, measured: RUNS moves of one
user between ms1 and ms2 on the converged `sharded` scenario, each while
mail for the user streams in, counted by Message-ID.

Each run: a sender on outside1 sends the user messages (each with its own
Message-ID) through smtp1 and smtp2 in turn, one every 0.1 s; once some
have arrived, `playbooks/move_user.yml` moves the user to the other shard
and removes the source copy (mailstack_move_cleanup=true), as an operator
runs it; the sender must still be sending when the playbook ends (the load
spans the whole move), then stops (at least MESSAGES sent). Once the SMTP
tier's queues are flushed, the target shard must hold every message ever
sent to the user once: the run prints lost and duplicated counts, the UIDs
that changed (messages that were there before the move), whether
UIDVALIDITY stayed, and the hold. Goal: 0 lost, 0 duplicated, 0 UIDs
changed, in every run; a run that misses it fails the benchmark.

The user (bench-loop@DOMAIN) is created first and removed after; the shards
are made active for the run and put back.
Prints one JSON object as its last line.

Usage: bench/run move_loop [--smoke] [--inventory PATH] [--runs N] [--messages N]
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import collections
import json
import os
import re
import time

import mailstack_testlib as testlib
from benchlib import REPO, address, inventory_hostvars, lab_args, make_log, module, sh

log = make_log('move_loop')
HOSTS = ['ns1', 'smtp1', 'smtp2', 'proxy1', 'ms1', 'ms2', 'outside1']
INVENTORY = os.path.join(REPO, '.cache', 'molecule', 'sharded', 'inventory')
PASSWORD = 'bench-loop-password'
FULL = dict(runs=20, messages=60)
SMOKE = dict(runs=1, messages=30)

# On outside1: sends to USER, through the SMTP hosts in turn, until
# /tmp/loop.stop exists and at least MIN were sent; prints how many.
SENDER = r'''
import os, smtplib, sys, time
user, run, least, hosts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
i = 0
while i < least or not os.path.exists("/tmp/loop.stop"):
    s = smtplib.SMTP(hosts[i % len(hosts)], 25, timeout=30)
    s.sendmail("someone@outside.test", [user],
               "From: someone@outside.test\r\nMessage-ID: <loop-%d-%04d@outside.test>\r\n"
               "Subject: loop %d %d\r\n\r\nmessage %d\r\n" % (run, i, run, i, i))
    s.quit()
    i += 1
    time.sleep(0.1)
print(i)
'''


def db(query):
    """A query on ns1, a node of the mail database's Galera cluster: the
    last move's flip may have been written through ms2's node, which ns1
    applies a moment after it returned; the sync wait reads it."""
    return sh('ns1', 'mysql -N -B mail -e %s' % json.dumps('SET SESSION wsrep_sync_wait = 1; ' + query)).stdout.strip()


def mailbox(shard, user):
    """What IMAP sees of the user's INBOX on shard: UIDVALIDITY, a Counter
    of Message-IDs, their UIDs."""
    rows = json.loads(sh(shard, "doveadm -f json fetch -u %s 'uid hdr.message-id' mailbox INBOX" % user).stdout)
    validity = sh(shard, 'doveadm mailbox status -u %s uidvalidity INBOX' % user).stdout.strip().split('=')[1]
    ids = [r['hdr.message-id'].strip() for r in rows]
    return validity, collections.Counter(ids), dict((r['hdr.message-id'].strip(), r['uid']) for r in rows)


def provision(inventory, hostvars, user, state):
    args = dict(users=[dict(email=user, password=PASSWORD, mailbox_host='ms1', state=state)],
                update_password='on_create', login_user='mailadmin',
                login_password=hostvars['ns1']['mail_database_admin_password'])
    module(inventory, 'ns1', 'mailops.mailstack.mail_user', args)
    if state == 'absent':
        local, domain = user.split('@')
        for shard in ('ms1', 'ms2'):
            sh(shard, 'rm -rf /var/vmail/%s/%s' % (domain, local))


def set_states(inventory, hostvars, states):
    for name, state in states.items():
        args = dict(name=name, host_state=state, login_user='mailadmin',
                    login_password=hostvars['ns1']['mail_database_admin_password'])
        if not db("SELECT name FROM mailbox_host WHERE name = '%s'" % name):
            args['address'] = address(name)  # retired by the scenario's last check: back at its address
        module(inventory, 'ns1', 'mailops.mailstack.mail_host', args)


def wait_for(shard, user, ids, timeout=180):
    deadline = time.time() + timeout
    while True:
        got = mailbox(shard, user)
        if all(got[1][i] >= 1 for i in ids) or time.time() > deadline:
            return got
        for name in ('smtp1', 'smtp2'):
            sh(name, 'postqueue -f')
        time.sleep(2)


def one_run(inventory, user, run, least):
    source = db("SELECT mailbox_host FROM mailbox WHERE email = '%s'" % user)
    target = 'ms2' if source == 'ms1' else 'ms1'
    smtp = [address('smtp1'), address('smtp2')]
    sh('outside1', 'rm -f /tmp/loop.stop /tmp/loop.out && cat > /tmp/loop.py', input_text=SENDER)
    sh('outside1', 'nohup python3 /tmp/loop.py %s %d %d %s > /tmp/loop.out 2>&1 &' % (user, run, least, ' '.join(smtp)))
    # Move once part of this run's load has arrived.
    first = ['<loop-%d-%04d@outside.test>' % (run, i) for i in range(5)]
    before = wait_for(source, user, first, timeout=120)
    start = time.time()
    result = testlib.playbook('-i', inventory, os.path.join(REPO, 'playbooks', 'move_user.yml'),
                              '-e', 'mailstack_move_email=%s' % user, '-e', 'mailstack_move_target=%s' % target,
                              '-e', 'mailstack_move_cleanup=true', env=testlib.ansible_env(config=testlib.CONFIG),
                              cwd=REPO, timeout=1800)
    seconds = time.time() - start
    out = ' '.join((result.stdout + result.stderr).split())
    overlapped = not sh('outside1', 'cat /tmp/loop.out').stdout.strip()
    sh('outside1', 'touch /tmp/loop.stop')
    deadline = time.time() + 120
    while time.time() < deadline and not sh('outside1', 'cat /tmp/loop.out').stdout.strip():
        time.sleep(1)
    sent = int(sh('outside1', 'cat /tmp/loop.out').stdout.strip())
    mine = ['<loop-%d-%04d@outside.test>' % (run, i) for i in range(sent)]
    # This run's messages, and those the mailbox held when the move started
    # (a message an earlier run lost is counted there, not again here).
    want = mine + [i for i in before[1] if i not in mine]
    validity, ids, uids = wait_for(target, user, mine)
    hold = re.search(r'%s: moved %s -> %s .*?hold=([0-9.]+)s' % (re.escape(user), source, target), out)
    figures = dict(
        run=run, source=source, target=target, moved=result.returncode == 0 and hold is not None,
        sent=sent, lost=sum(1 for i in want if ids[i] < 1),
        duplicated=sum(n - 1 for n in ids.values() if n > 1) + sum(n for i, n in ids.items() if i not in want),
        uids_changed=sum(1 for i, u in before[2].items() if uids.get(i) != u),
        uidvalidity_kept=validity == before[0], overlapped=overlapped,
        hold_seconds=float(hold.group(1)) if hold else None, playbook_seconds=round(seconds, 1),
        source_copy_left=bool(sh(source, 'test -e /var/vmail/%s/%s && echo yes' % tuple(reversed(user.split('@'))),
                                 check=False).stdout.strip()))
    if not figures['moved']:
        log('run %d: move_user.yml failed (rc %d): %s' % (run, result.returncode, out[-2000:]))
    return figures


def failed(run):
    return (not run['moved'] or run['lost'] or run['duplicated'] or run['uids_changed']
            or not run['uidvalidity_kept'] or not run['overlapped'] or run['source_copy_left'])


def main():
    args, sizes = lab_args(__doc__, INVENTORY, FULL, SMOKE, 'one run: proves the benchmark works')

    hostvars = inventory_hostvars(args.inventory, HOSTS)
    user = 'bench-loop@%s' % hostvars['ns1'].get('mailstack_domain', 'example.test')
    states = dict(line.split('\t') for line in db('SELECT name, state FROM mailbox_host').splitlines())
    set_states(args.inventory, hostvars, dict((n, 'active') for n in ('ms1', 'ms2') if states.get(n) != 'active'))
    provision(args.inventory, hostvars, user, 'absent')  # leftovers of an interrupted run
    runs = []
    try:
        provision(args.inventory, hostvars, user, 'present')
        for run in range(1, sizes['runs'] + 1):
            figures = one_run(args.inventory, user, run, sizes['messages'])
            runs.append(figures)
            log('run %d/%d: %s -> %s, sent %d, lost %d, duplicated %d, uids changed %d, uidvalidity kept %s, '
                'load overlapped the move %s, hold %s s, playbook %.0f s%s'
                % (run, sizes['runs'], figures['source'], figures['target'], figures['sent'], figures['lost'],
                   figures['duplicated'], figures['uids_changed'], figures['uidvalidity_kept'],
                   figures['overlapped'], figures['hold_seconds'], figures['playbook_seconds'],
                   '  FAILED' if failed(figures) else ''))
    finally:
        sh('outside1', 'touch /tmp/loop.stop', check=False)
        provision(args.inventory, hostvars, user, 'absent')
        set_states(args.inventory, hostvars, dict((n, s) for n, s in states.items()
                                                  if n in ('ms1', 'ms2') and s != 'active'))
    holds = [r['hold_seconds'] for r in runs if r['hold_seconds'] is not None]
    summary = dict(
        sizes=sizes, runs=len(runs), failed_runs=sum(1 for r in runs if failed(r)),
        messages_sent=sum(r['sent'] for r in runs), lost=sum(r['lost'] for r in runs),
        duplicated=sum(r['duplicated'] for r in runs), uids_changed=sum(r['uids_changed'] for r in runs),
        hold_seconds_max=max(holds) if holds else None,
        hold_seconds_mean=round(sum(holds) / len(holds), 3) if holds else None,
        per_run=[dict((k, r[k]) for k in ('run', 'sent', 'lost', 'duplicated', 'uids_changed', 'hold_seconds'))
                 for r in runs])
    print(json.dumps(summary))
    if summary['failed_runs']:
        raise SystemExit('%d of %d runs lost, duplicated or renumbered mail, or failed' % (
            summary['failed_runs'], len(runs)))


if __name__ == '__main__':
    main()
