# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the sharded topology's three costs, on the converged `sharded`
scenario, each against its own baseline in the same run.

- proxy_vs_direct: IMAP login + SELECT + FETCH of every message (100) of a
  user on ms1, through the proxy tier (proxy1's Dovecot on 127.0.0.1,
  proxying to ms1) against directly on ms1 (from proxy1's address, which ms1
  trusts), both from the same client on proxy1, alternating, ROUNDS each.
  Goal: proxy time <= 1.5 x direct.
- tier_vs_shard: messages per second delivered through the SMTP tier
  (smtp-source on outside1 -> smtp1 and smtp2, half the messages and
  sessions each -> LMTP on ms1, content filter off for the run) against
  smtp-source speaking LMTP straight into ms1, counted until every message is
  in the Maildir. Goal: tier >= 0.9 x shard. On the lab every host shares
  the same cores, so the SMTP hosts' own work slows the shard down; the CPU
  each container used per message is reported beside the rates, and
  tier_vs_shard_cpu is the shard's CPU per message straight into LMTP over
  its CPU per message through the tier (what the tier costs the shard).
- move_vs_dsync: moving a user with MOVE messages from ms1 to ms2 with
  mailops.mailstack.mailbox_move (the module's own time: copy, hold, kicks,
  final sync, release) against a bare `doveadm backup -R` of the same
  mailbox onto ms2 (the mean of two). Goal: <= 1.3 x. hold_seconds is the time the user's
  deliveries and logins were held (goal under 5 s).

The benchmark's users (bench-*@DOMAIN) are created first and removed after.
Prints one JSON object as its last line.

Usage: bench/run sharded [--smoke] [--inventory PATH] [--rounds N] [--messages N] [--move N]
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import threading
import time

from benchlib import (REPO, address, cpu_seconds, inventory_hostvars, lab_args, make_log, module, sh, smtp_source,
                      wait_queue_empty, without_filter)

log = make_log('sharded')
HOSTS = ['ns1', 'smtp1', 'smtp2', 'proxy1', 'ms1', 'ms2', 'outside1']
INVENTORY = os.path.join(REPO, '.cache', 'molecule', 'sharded', 'inventory')
PASSWORD = 'bench-sharded-password'
SIZE = 5120
SESSIONS = 10
FETCHED = 100
DOVEADM_PORT = 24245
BARE_RUNS = 2
# The mail database's Galera nodes, in mail_db's order (molecule.yml).
DB_NODES = ['ns1', 'proxy1', 'ms2']
# Whose CPU the delivery runs count: the senders, the tier, the shard, and
# the mail database's Galera nodes (ns1, proxy1, ms2), which answer the
# tier's and the shard's lookups in turn.
CPU_HOSTS = ['outside1', 'smtp1', 'smtp2', 'ns1', 'proxy1', 'ms2', 'ms1']

FULL = dict(rounds=20, messages=2000, move=10000)
SMOKE = dict(rounds=2, messages=40, move=200)

# Writes COUNT numbered messages of about SIZE bytes into a user's Maildir
# (as its owner) and lets Dovecot index them. argv: user count size
FILL = r'''
import os, subprocess, sys, time
user, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
subprocess.run(['doveadm', 'mailbox', 'status', '-u', user, 'messages', 'INBOX'], check=True,
               stdout=subprocess.DEVNULL)
home = subprocess.run(['doveadm', 'user', '-f', 'home', user], check=True, capture_output=True,
                      text=True).stdout.strip()
cur = os.path.join(home, 'Maildir', 'cur')
st = os.stat(os.path.join(home, 'Maildir'))
# Maildir keeps LF line ends; S= is the file's size, W= the size with CRLF.
body = ('x' * 76 + '\n') * (size // 77)
now = int(time.time())
for i in range(count):
    text = ('From: sender@outside.test\nTo: %s\nSubject: bench %d\n'
            'Message-ID: <bench-%d-%d@outside.test>\n\n%s' % (user, i, now, i, body)).encode()
    name = os.path.join(cur, '%d.M%dP%d.bench,S=%d,W=%d:2,S'
                        % (now, i, os.getpid(), len(text), len(text) + text.count(b'\n')))
    with open(name, 'wb') as f:
        f.write(text)
    os.chown(name, st.st_uid, st.st_gid)
out = subprocess.run(['doveadm', 'mailbox', 'status', '-u', user, 'messages', 'INBOX'], check=True,
                     capture_output=True, text=True).stdout
print(out.split('=')[1].strip())
'''

# On proxy1: ROUNDS alternating sessions, direct to the shard and through the
# local proxy; each logs in, selects INBOX, fetches every message, logs out.
# argv: shard_address user password rounds
IMAP = r'''
import imaplib, json, sys, time
shard, user, password, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def session(host):
    start = time.time()
    m = imaplib.IMAP4(host, 143)
    m.login(user, password)
    typ, data = m.select('INBOX', readonly=True)
    n = int(data[0])
    typ, data = m.fetch('1:%d' % n, '(UID FLAGS BODY.PEEK[])')
    fetched = sum(1 for item in data if isinstance(item, tuple))
    m.logout()
    return time.time() - start, fetched
times = {'direct': [], 'proxy': []}
fetched = set()
session(shard), session('127.0.0.1')  # warm up both paths
for _ in range(rounds):
    for path, host in (('direct', shard), ('proxy', '127.0.0.1')):
        seconds, n = session(host)
        times[path].append(seconds)
        fetched.add(n)
print(json.dumps({'times': times, 'fetched': sorted(fetched)}))
'''


def provision(inventory, users, state='present'):
    args = dict(users=[dict(email=email, password=PASSWORD, mailbox_host=shard, state=state)
                       for email, shard in users],
                update_password='on_create', login_user='mailadmin',
                login_password=HOSTVARS['ns1']['mail_database_admin_password'])
    module(inventory, 'ns1', 'mailops.mailstack.mail_user', args)


def shard_states():
    # On ns1, a node of the cluster: what any node committed before, included (wsrep_sync_wait).
    out = sh('ns1', 'mysql -N -B -e "SET SESSION wsrep_sync_wait = 1; SELECT name, state FROM mail.mailbox_host"').stdout
    return dict(line.split('\t') for line in out.splitlines() if line.strip())


def set_shard_state(inventory, shard, state):
    args = dict(name=shard, host_state=state, login_user='mailadmin',
                login_password=HOSTVARS['ns1']['mail_database_admin_password'])
    if shard not in shard_states():
        # Retired by the scenario's last test (the guide's retirement): back,
        # at its address, for the benchmark.
        args['address'] = address(shard)
    module(inventory, 'ns1', 'mailops.mailstack.mail_host', args)


def remove_maildirs(users):
    for email, _shard in users:
        local, domain = email.split('@')
        for shard in ('ms1', 'ms2'):
            sh(shard, 'rm -rf /var/vmail/%s/%s' % (domain, local))


def fill(shard, user, count):
    start = time.time()
    n = int(sh(shard, 'python3 - %s %d %d' % (user, count, SIZE), input_text=FILL, timeout=1800).stdout.strip())
    if n != count:
        raise SystemExit('%s on %s: %d messages after filling, not %d' % (user, shard, n, count))
    log('%s: %d messages on %s in %.1f s' % (user, n, shard, time.time() - start))


def maildir_count(shard, user):
    local, domain = user.split('@')
    out = sh(shard, 'ls -U /var/vmail/%s/%s/Maildir/new 2>/dev/null | wc -l' % (domain, local)).stdout
    return int(out.strip() or 0)


def proxy_vs_direct(user, rounds):
    out = sh('proxy1', 'python3 - %s %s %s %d' % (address('ms1'), user, PASSWORD, rounds),
             input_text=IMAP, timeout=1800).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if result['fetched'] != [FETCHED]:
        raise SystemExit('IMAP sessions fetched %s messages, not %d' % (result['fetched'], FETCHED))
    direct, proxy = sum(result['times']['direct']), sum(result['times']['proxy'])
    log('IMAP, %d sessions each: direct %.2f s, through the proxy %.2f s' % (rounds, direct, proxy))
    return direct / rounds, proxy / rounds


def delivered(name, user, messages, send, timeout=900):
    """Runs send() while counting the user's new messages on ms1; returns the
    rate (messages per second until the last is in the Maildir) and the CPU
    milliseconds per message each lab host used meanwhile."""
    if maildir_count('ms1', user):
        raise SystemExit('%s: the Maildir of %s is not empty' % (name, user))
    errors = []

    def sender():
        try:
            send()
        except SystemExit as e:
            errors.append(str(e))

    cpu = dict((h, cpu_seconds(h)) for h in CPU_HOSTS)
    start = time.time()
    thread = threading.Thread(target=sender)
    thread.start()
    seen = 0
    while seen < messages and not errors:
        if time.time() - start > timeout:
            break
        time.sleep(0.1)
        seen = maildir_count('ms1', user)
    seconds = time.time() - start
    thread.join()
    cpu = dict((h, round(1000 * (cpu_seconds(h) - cpu[h]) / messages, 2)) for h in CPU_HOSTS)
    if errors:
        raise SystemExit(errors[0])
    if seen != messages:
        raise SystemExit('%s: %d of %d messages delivered after %.0f s' % (name, seen, messages, seconds))
    log('%s: %d messages in %.1f s: %.1f msgs/s; CPU ms per message: %s'
        % (name, messages, seconds, messages / seconds, cpu))
    local, domain = user.split('@')
    sh('ms1', 'rm -rf /var/vmail/%s/%s/Maildir/new/*' % (domain, local))
    return messages / seconds, cpu


def tier_vs_shard(user, messages):
    ms1 = address('ms1')
    shard = delivered('straight into ms1\'s LMTP', user, messages,
                      lambda: smtp_source('%s:24' % ms1, user, messages, SESSIONS, SIZE, lmtp=True))
    half = messages // 2
    tier_hosts = ['smtp1', 'smtp2']
    targets = [address(h) for h in tier_hosts]

    def both():
        errors = []

        def one(target, n):
            try:
                smtp_source(target, user, n, SESSIONS // 2, SIZE)
            except SystemExit as e:
                errors.append(str(e))

        threads = [threading.Thread(target=one, args=(t, n)) for t, n in zip(targets, (half, messages - half))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise SystemExit(errors[0])

    tier = without_filter(tier_hosts, lambda: delivered('through the SMTP tier', user, messages, both))
    for h in tier_hosts:
        wait_queue_empty(h)
    return shard, tier


def move_vs_dsync(inventory, user, count):
    ms1 = address('ms1')
    local, domain = user.split('@')
    # The bare copy: what the module's copy step runs, once, into an empty
    # mailbox on ms2, removed after (and the removal written out before the
    # next timing). Twice: one copy varies by a few seconds.
    bare_runs = []
    for _attempt in range(BARE_RUNS):
        start = time.time()
        sh('ms2', 'doveadm backup -R -u %s tcp:%s:%d' % (user, ms1, DOVEADM_PORT), timeout=3600)
        bare_runs.append(time.time() - start)
        copied = sh('ms2', 'doveadm mailbox status -u %s messages INBOX' % user).stdout.split('=')[1].strip()
        if int(copied) != count:
            raise SystemExit('the bare doveadm backup copied %s messages, not %d' % (copied, count))
        sh('ms2', 'rm -rf /var/vmail/%s/%s && sync' % (domain, local))
    log('bare doveadm backup of %d messages: %s s' % (count, ', '.join('%.1f' % b for b in bare_runs)))

    # Every node of the mail database's cluster, in mail_db's order: the
    # module writes through the first and waits until the others have
    # applied the flip and the hold, as a move by move_user.yml does.
    args = dict(email=user, target='ms2', proxies=[address('proxy1')], doveadm_port=DOVEADM_PORT,
                doveadm_password=HOSTVARS['ms2']['dovecot_doveadm_password'],
                login_host=[address(node) for node in DB_NODES],
                login_user='mail_mover', login_password=HOSTVARS['ms2']['mail_database_mover_password'],
                # The account requires TLS from another host.
                ca_cert='/etc/ssl/certs/ca-certificates.crt')
    result, wall = module(inventory, 'ms2', 'mailops.mailstack.mailbox_move', args)
    if result.get('outcome') != 'moved':
        raise SystemExit('mailbox_move did not move %s: %s' % (user, result))
    moved = sh('ms2', 'doveadm mailbox status -u %s messages INBOX' % user).stdout.split('=')[1].strip()
    if int(moved) != count:
        raise SystemExit('after the move ms2 has %s messages of %s, not %d' % (moved, user, count))
    log('mailbox_move: %.1f s in the module (copy %.1f s, hold %.2f s), %.1f s with ansible'
        % (result['seconds'], result['copy_seconds'], result['hold_seconds'], wall))
    return bare_runs, result, wall


def main():
    global HOSTVARS
    args, sizes = lab_args(__doc__, INVENTORY, FULL, SMOKE, 'small counts: proves the benchmark works')

    HOSTVARS = inventory_hostvars(args.inventory, HOSTS)
    domain = HOSTVARS['ns1'].get('mailstack_domain', 'example.test')
    imap_user, lmtp_user, move_user = ('bench-%s@%s' % (n, domain) for n in ('imap', 'lmtp', 'move'))
    users = [(imap_user, 'ms1'), (lmtp_user, 'ms1'), (move_user, 'ms1')]
    load_before = os.getloadavg()[0]
    # The shards take new mailboxes for the run (the scenario's checks leave
    # ms2 draining); their states are restored after.
    states = shard_states()
    for name in ('ms1', 'ms2'):
        if states.get(name) != 'active':
            set_shard_state(args.inventory, name, 'active')
    # Leftovers of an interrupted run first.
    provision(args.inventory, users, state='absent')
    remove_maildirs(users)
    try:
        provision(args.inventory, users)
        fill('ms1', imap_user, FETCHED)
        direct, proxy = proxy_vs_direct(imap_user, sizes['rounds'])
        (lmtp_rate, lmtp_cpu), (tier_rate, tier_cpu) = tier_vs_shard(lmtp_user, sizes['messages'])
        fill('ms1', move_user, sizes['move'])
        bare_runs, move, move_wall = move_vs_dsync(args.inventory, move_user, sizes['move'])
    finally:
        provision(args.inventory, users, state='absent')
        remove_maildirs(users)
        for name, state in states.items():
            if state != 'active':
                set_shard_state(args.inventory, name, state)
    figures = dict(
        sizes=sizes, message_bytes=SIZE, sessions=SESSIONS,
        imap_direct_seconds=round(direct, 4), imap_proxy_seconds=round(proxy, 4),
        proxy_vs_direct=round(proxy / direct, 3),
        shard_lmtp_msgs_per_s=round(lmtp_rate, 1), tier_msgs_per_s=round(tier_rate, 1),
        tier_vs_shard=round(tier_rate / lmtp_rate, 3),
        shard_lmtp_cpu_ms_per_msg=lmtp_cpu, tier_cpu_ms_per_msg=tier_cpu,
        # The shard's CPU per message straight into LMTP over through the
        # tier: what the tier costs the shard itself (1.0: nothing).
        tier_vs_shard_cpu=round(lmtp_cpu['ms1'] / tier_cpu['ms1'], 3),
        dsync_seconds=round(sum(bare_runs) / len(bare_runs), 2),
        dsync_runs_seconds=[round(b, 2) for b in bare_runs],
        move_seconds=move['seconds'], move_copy_seconds=move['copy_seconds'],
        move_sync_seconds=move['sync_seconds'], move_with_ansible_seconds=round(move_wall, 1),
        move_vs_dsync=round(move['seconds'] * len(bare_runs) / sum(bare_runs), 3),
        hold_seconds=move['hold_seconds'],
    )
    figures['goals_met'] = bool(figures['proxy_vs_direct'] <= 1.5 and figures['tier_vs_shard'] >= 0.9
                                and figures['move_vs_dsync'] <= 1.3 and figures['hold_seconds'] < 5)
    figures['load_avg_1m'] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(figures))


HOSTVARS = {}

if __name__ == '__main__':
    main()
