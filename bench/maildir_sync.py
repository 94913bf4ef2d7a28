# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: incremental maildir_sync of a 100,000-message mail root beside bare rsync -a.

1. Generates a mail root of N messages (default 100,000) in a temporary
   directory: 100 users in 4 domains, each with a Maildir and the folders
   .Sent .Drafts .Trash .Archive (500 Maildirs); file names as Dovecot writes
   them (<time>.M<usec>P<pid>.<host>,S=<size>,W=<vsize>:2,<flags>), about a
   tenth still in new/; each folder with dovecot-uidlist, dovecot.index,
   .index.log and .index.cache, each mailbox with dovecot.list.index,
   subscriptions and maildirsize.
2. Copies it (cp -a) into 2 x ROUNDS identical target trees.
3. Changes 1 % of the messages on the source: half new mail (in new/), half
   flag renames (new/ -> cur/ with :2,S, or flags added in cur/); appends to
   the dovecot-uidlist and index log of the folders that got new mail.
4. Each round syncs the source into one target with the module's code (the
   standalone program plugins/module_utils/maildir_sync.py run by python3 -
   what the systemd timer runs) and into another with bare `rsync -a src/
   dst/`, alternating which goes first; both warm-cache, same run, same
   source. The best time of each counts.
5. Checks both results: the module's targets hold exactly the source's
   messages (no message twice); the rsync targets hold every renamed message
   twice (old and new name) - what the module exists to avoid.
6. Prints one JSON object as its last line:
   messages, module_seconds, rsync_seconds, ratio (module / rsync; goal <= 1.2).

Usage: bench/run maildir_sync [--messages N] [--rounds R] [--smoke] [--keep]
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, 'plugins', 'module_utils', 'maildir_sync.py')
DOMAINS = ('example.org', 'example.net', 'example.com', 'example.edu')
FOLDERS = ('', '.Sent', '.Drafts', '.Trash', '.Archive')
FOLDER_WEIGHTS = (60, 15, 3, 7, 15)
FLAGS = ('S', 'S', 'S', 'RS', 'FS', 'S', '', 'RS')
HOST = 'mx1.example.org'
T0 = 1700000000


def log(msg):
    print('[bench] %s' % msg, file=sys.stderr, flush=True)


def maildirs(root, users):
    out = []
    for u in range(users):
        mbox = os.path.join(root, DOMAINS[u % len(DOMAINS)], 'user%03d' % u, 'Maildir')
        out.append((mbox, [os.path.join(mbox, f) if f else mbox for f in FOLDERS]))
    return out


def message(rnd, i):
    """(unique base name, body, mtime) of message i."""
    body_len = rnd.randint(300, 3000)
    t = T0 + i * 7
    hdr = ('Return-Path: <sender%d@example.com>\nDate: Tue, 14 Nov 2023 22:13:20 +0000\n'
           'From: sender%d@example.com\nTo: user@example.org\nSubject: message %d\n'
           'Message-ID: <%d@example.com>\n\n' % (i, i, i, i))
    text = hdr + ('x' * 71 + '\n') * (body_len // 72)
    size = len(text)
    vsize = size + text.count('\n')
    base = '%d.M%dP%d.%s,S=%d,W=%d' % (t, rnd.randint(0, 999999), rnd.randint(1000, 65000), HOST, size, vsize)
    return base, text, t


def write(path, text, mtime=None):
    with open(path, 'w') as f:
        f.write(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def generate(root, n, users, rnd):
    """Write the source tree; returns {folder path: [relative message names]}."""
    boxes = maildirs(root, users)
    index = {}
    for mbox, folders in boxes:
        for f in folders:
            for sub in ('cur', 'new', 'tmp'):
                os.makedirs(os.path.join(f, sub))
            index[f] = []
            if f != mbox:
                write(os.path.join(f, 'maildirfolder'), '')
        write(os.path.join(mbox, 'subscriptions'), 'V\t2\n\nSent\nDrafts\nTrash\nArchive\n')
        write(os.path.join(mbox, 'dovecot-uidvalidity'), '6553f100\n')
        write(os.path.join(mbox, 'dovecot.list.index'), 'L' * 2048)
        write(os.path.join(mbox, 'dovecot.list.index.log'), 'l' * 4096)
        write(os.path.join(mbox, 'maildirsize'), '1073741824S\n0 0\n')
    folders = [f for mbox, fs in boxes for f in fs]
    weights = [FOLDER_WEIGHTS[i % len(FOLDERS)] for i in range(len(folders))]
    for i, f in enumerate(rnd.choices(folders, weights=weights, k=n)):
        base, text, t = message(rnd, i)
        if rnd.random() < 0.1:
            name = 'new/' + base
        else:
            name = 'cur/%s:2,%s' % (base, rnd.choice(FLAGS))
        write(os.path.join(f, name), text, t)
        index[f].append(name)
    for f, names in index.items():
        uid = ['3 V1700000000 N%d G%032x' % (len(names) + 1, rnd.getrandbits(128))]
        uid += ['%d :%s' % (k + 1, nm.split('/', 1)[1]) for k, nm in enumerate(names)]
        write(os.path.join(f, 'dovecot-uidlist'), '\n'.join(uid) + '\n', T0)
        write(os.path.join(f, 'dovecot.index'), 'I' * (64 + 40 * len(names)), T0)
        write(os.path.join(f, 'dovecot.index.log'), 'G' * 8192, T0)
        write(os.path.join(f, 'dovecot.index.cache'), 'C' * (200 * len(names)), T0)
    return index


def change(index, n_new, n_renames, rnd):
    """1 %: new mail and flag renames on the source. Returns the renamed (old, new) paths."""
    folders = sorted(index)
    now = int(time.time())
    touched = set()
    for k in range(n_new):
        f = rnd.choice(folders)
        base, text, t = message(rnd, 10 ** 7 + k)
        write(os.path.join(f, 'new', base), text, now)
        touched.add(f)
    renames = []
    picked = set()
    candidates = [(f, nm) for f in folders for nm in index[f]]
    while len(renames) < n_renames:
        f, nm = rnd.choice(candidates)
        if (f, nm) in picked:
            continue
        picked.add((f, nm))
        base, sep, flags = nm[4:].partition(':2,')
        if nm.startswith('new/'):
            new = 'cur/%s:2,S' % base
        else:
            extra = rnd.choice([c for c in 'FRT' if c not in flags] or ['S'])
            new = 'cur/%s:2,%s' % (base, ''.join(sorted(set(flags + extra))))
        os.rename(os.path.join(f, nm), os.path.join(f, new))
        renames.append((os.path.join(f, nm), os.path.join(f, new)))
    for f in touched:
        with open(os.path.join(f, 'dovecot-uidlist'), 'a') as fh:
            fh.write('%d :new-mail\n' % rnd.randint(10 ** 5, 10 ** 6))
        with open(os.path.join(f, 'dovecot.index.log'), 'a') as fh:
            fh.write('g' * 512)
    return renames


def messages_of(root):
    """{folder: sorted names in cur/ and new/} of a tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        name = os.path.basename(dirpath)
        if name in ('cur', 'new'):
            folder = os.path.relpath(os.path.dirname(dirpath), root)
            out.setdefault(folder, []).extend(name + '/' + f for f in filenames)
        if name == 'tmp':
            dirnames[:] = []
    return out


def duplicates(tree):
    """Messages present more than once (same unique base name) in a folder."""
    n = 0
    for names in tree.values():
        bases = [nm[4:].split(':', 1)[0] for nm in names]
        n += len(bases) - len(set(bases))
    return n


def cpu_children():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed(argv):
    """(wall seconds, CPU seconds of the process and its children, stdout)."""
    cpu = cpu_children()
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit('%s failed (rc %d):\n%s' % (' '.join(argv), proc.returncode, proc.stderr[-3000:]))
    return seconds, cpu_children() - cpu, proc.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    ap.add_argument('--messages', type=int, default=100000)
    ap.add_argument('--users', type=int, default=100)
    ap.add_argument('--rounds', type=int, default=3, help='timed rounds; each needs two fresh target copies')
    ap.add_argument('--tmpdir', default=os.environ.get('TMPDIR', '/var/tmp'))
    ap.add_argument('--keep', action='store_true', help='keep the temporary directory')
    ap.add_argument('--smoke', action='store_true', help='CI smoke check: 2,000 messages, 20 users')
    opts = ap.parse_args()
    if opts.smoke:
        opts.messages, opts.users = 2000, 20
    rsync = shutil.which('rsync')
    if not rsync:
        raise SystemExit('rsync is not installed (Debian: rsync)')
    python = '/usr/bin/python3' if os.path.exists('/usr/bin/python3') else sys.executable
    rnd = random.Random(20261128)
    tmp = tempfile.mkdtemp(prefix='mailstack-bench-maildir-', dir=opts.tmpdir)
    try:
        src = os.path.join(tmp, 'src')
        start = time.time()
        log('generating %d messages for %d users in %s' % (opts.messages, opts.users, src))
        index = generate(src, opts.messages, opts.users, rnd)
        log('generated in %.1f s; copying into %d targets' % (time.time() - start, 2 * opts.rounds))
        targets = []
        for r in range(opts.rounds):
            pair = (os.path.join(tmp, 'module%d' % r), os.path.join(tmp, 'rsync%d' % r))
            for t in pair:
                subprocess.check_call(['cp', '-a', src, t])
            targets.append(pair)
        n_changes = max(2, opts.messages // 100)
        renames = change(index, n_changes // 2, n_changes - n_changes // 2, rnd)
        log('changed %d messages on the source (%d new, %d renamed)'
            % (n_changes, n_changes // 2, len(renames)))
        os.sync()
        time.sleep(1)

        load_before = os.getloadavg()[0]
        module_runs, rsync_runs, results = [], [], []
        for r, (mod_dst, rs_dst) in enumerate(targets):
            cfg = os.path.join(tmp, 'sync%d.json' % r)
            with open(cfg, 'w') as f:
                json.dump(dict(src=src, dest=mod_dst), f)
            runs = [('module', [python, SCRIPT, '--config', cfg]), ('rsync', [rsync, '-a', src + '/', rs_dst + '/'])]
            if r % 2:
                runs.reverse()
            for label, argv in runs:
                seconds, cpu, out = timed(argv)
                if label == 'module':
                    module_runs.append((seconds, cpu))
                    results.append(json.loads(out.strip().splitlines()[-1]))
                else:
                    rsync_runs.append((seconds, cpu))
                log('round %d: %-6s %.3f s (%.3f CPU s)' % (r + 1, label, seconds, cpu))
        load_after = os.getloadavg()[0]

        log('checking the results')
        want = messages_of(src)
        want_n = sum(len(v) for v in want.values())
        for mod_dst, rs_dst in targets:
            got = messages_of(mod_dst)
            assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in want.items()}, \
                'the module target differs from the source'
            assert duplicates(got) == 0
            rs = messages_of(rs_dst)
            assert sum(len(v) for v in rs.values()) == want_n + len(renames)
        rsync_dups = duplicates(messages_of(targets[0][1]))
        res = results[0]
        assert res['new'] == n_changes // 2 and res['flag_changes'] == len(renames), res
        assert all(x['new'] == res['new'] and x['flag_changes'] == res['flag_changes'] for x in results)
        # both again on their synced trees: nothing to do - the fixed cost of a run
        noop_module, noop_rsync = [], []
        for r in range(2):
            seconds2, cpu2, out = timed([python, SCRIPT, '--config', os.path.join(tmp, 'sync0.json')])
            rerun = json.loads(out.strip().splitlines()[-1])
            assert not rerun['changed'], rerun
            noop_module.append(seconds2)
            noop_rsync.append(timed([rsync, '-a', src + '/', targets[0][1] + '/'])[0])
        log('no-op runs: module %s, rsync %s' % (noop_module, noop_rsync))
    finally:
        if not opts.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log('kept %s' % tmp)

    module_s, rsync_s = min(x[0] for x in module_runs), min(x[0] for x in rsync_runs)
    module_cpu, rsync_cpu = min(x[1] for x in module_runs), min(x[1] for x in rsync_runs)
    print(json.dumps(dict(
        messages=want_n, module_seconds=round(module_s, 3), rsync_seconds=round(rsync_s, 3),
        ratio=round(module_s / rsync_s, 3),
        module_runs=[round(x[0], 3) for x in module_runs], rsync_runs=[round(x[0], 3) for x in rsync_runs],
        module_cpu_seconds=round(module_cpu, 3), rsync_cpu_seconds=round(rsync_cpu, 3),
        cpu_ratio=round(module_cpu / rsync_cpu, 3),
        maildirs=res['maildirs_source'], new=res['new'], flag_changes=res['flag_changes'],
        indexes_rebuilt=res['indexes_rebuilt'], other_files=res['other_files'],
        module_duplicates=0, rsync_duplicates=rsync_dups,
        noop_module_seconds=round(min(noop_module), 3), noop_rsync_seconds=round(min(noop_rsync), 3),
        cores=os.cpu_count(), load_avg_1m=[round(load_before, 2), round(load_after, 2)])))


if __name__ == '__main__':
    main()
