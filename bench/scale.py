# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: every query the tiers send to the mail database, at 100,000 to 10,000,000 mailboxes.

1. The queries, as the roles and modules send them, never copied by hand:
   the map files of roles/postfix and dovecot-sql.conf.ext of roles/dovecot,
   rendered for every host of the four example inventories by the real
   playbooks/wire.yml and the roles' own defaults, vars and templates
   (mailstack_testlib.queries); the reads of mailbox_move
   (module_utils/mailbox_move_db.MoveDB, called); the database section of
   mailstack_info (its function called, its statements recorded).
2. Starts its own MariaDB (mailstack_testlib.mariadb, as bench/run
   provision), creates the schema as mail_schema does (module_utils/schema),
   and bulk-loads (LOAD DATA LOCAL INFILE) each size in turn: N mailboxes
   over 1,000 domains and 100 mailbox hosts (ms1..ms100), N/10 aliases, 10 relay domains,
   10 moves in progress (one password hash for all).
3. At each size, for each query: its EXPLAIN; the rows it reads per run
   (the session's Handler_read_* counters, less those of SELECT 1); p50 and
   p99 over L runs with varied keys (Postfix's %s/%u/%d and Dovecot's
   %u/%n/%d/%s substituted; existing, alias and unknown addresses) from one
   client over TCP on the same host. The limit measured in the same run:
   SELECT 1's p50 and p99 (the client's round trip).
4. Prints one JSON object as its last line. A scan is a plan with a full
   table or index scan (type ALL or index) of a table other than
   mailbox_host (one row per shard), or a query that reads more than twice
   the rows it returns plus 10. With --smoke, a scan of a query not in
   KNOWN_SCANS fails the run (exit 1): a lookup that lost its index; its
   line is then short (the summary and each size's facts, not every
   query's figures: --detail FILE writes the whole object).

Usage: bench/run scale [--size N ...] [--lookups L] [--buffer-pool 4G] [--schema-version 5] [--smoke]
       [--detail FILE]
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from ansible_collections.mailops.mailstack.plugins.module_utils import mailbox_move_db, passwords, schema
from ansible_collections.mailops.mailstack.plugins.modules import mailstack_info
from mailstack_testlib import mariadb as it
from mailstack_testlib import queries

DOMAINS = 1000
HOSTS = 100
RELAY_DOMAINS = 10
MOVES = 10
SMOKE = dict(sizes=[5000], lookups=100, buffer_pool='256M')

# Queries known to read more than they return, on which hosts (None: any),
# and why; any other scan fails --smoke. A query's name is service:setting,
# or module:function, and [its first host] when hosts differ in its text.
KNOWN_SCANS = {
    # The shards' lists only their own users (dovecot_mailbox_host).
    'dovecot:iterate_query': ({'single/mx1', 'backup_mx/mx1', 'nfs_shared/ms1', 'nfs_shared/ms2'},
                              'doveadm -A on a server that holds every user lists them all'),
    'mailstack_info:mailbox': (None, 'the shard summary counts every mailbox on each run, from the index '
                                     '(mailbox_host, active) alone; counts kept by triggers would make every insert '
                                     'and move slower (docs/performance.md, issue 33 item 2)'),
    'mailstack_info:mailbox_move': (None, 'the moves not done, on every run (one row per move)'),
}


def known_scan(name, hosts):
    """Why the query may scan on these hosts, or None."""
    allowed, why = KNOWN_SCANS.get(name.split('[')[0], (set(), None))
    return why if allowed is None or set(hosts) <= allowed else None


def log(msg):
    print('[scale] %s' % msg, file=sys.stderr, flush=True)


def email(i):
    return 'u%08d@d%04d.example' % (i, i % DOMAINS)


def alias(j):
    return 'a%08d@d%04d.example' % (j, j % DOMAINS)


def host(i):
    """ms1..ms100: the sharded example's shards (ms1, ms2) are among them,
    so that their rendered iterate queries find their users."""
    return 'ms%d' % (i % HOSTS + 1)


# -- the data -----------------------------------------------------------------

def connect(server, **extra):
    return it.pymysql.connect(host='127.0.0.1', port=server.port, user=it.ADMIN_USER, password=it.ADMIN_PASSWORD,
                              database=it.DB_NAME, autocommit=True, charset='utf8mb4', **extra)


def load_fixed(conn):
    """The domains, mailbox hosts and relay domains."""
    with conn.cursor() as cur:
        cur.executemany('INSERT INTO domain (name) VALUES (%s)', ['d%04d.example' % d for d in range(DOMAINS)])
        cur.executemany("INSERT INTO domain (name, kind, relay_host) VALUES (%s, 'relay', %s)",
                        [('relay%02d.example' % d, '[192.0.2.%d]:25' % (d + 1)) for d in range(RELAY_DOMAINS)])
        cur.executemany('INSERT INTO mailbox_host (name, address) VALUES (%s, %s)',
                        [(host(h), '10.1.%d.%d' % (h // 250, h % 250 + 1)) for h in range(HOSTS)])


def _tsv(path, rows):
    with open(path, 'w') as f:
        for row in rows:
            f.write('\t'.join(row) + '\n')


def load_rows(conn, tmp, start, end, password):
    """Mailboxes start..end-1 (every 3rd with a quota, every 101st suspended)
    and their aliases (one per 10 mailboxes), in primary key order."""
    path = os.path.join(tmp, 'rows.tsv')
    chunk = 1000000
    with conn.cursor() as cur:
        cur.execute('SET SESSION foreign_key_checks = 0, unique_checks = 0')
        for low in range(start, end, chunk):
            high = min(end, low + chunk)
            _tsv(path, (('u%08d@d%04d.example' % (i, i % DOMAINS), 'u%08d' % i, 'd%04d.example' % (i % DOMAINS),
                         password, '1073741824' if i % 3 == 0 else '0', host(i),
                         'd%04d.example/u%08d/' % (i % DOMAINS, i), '0' if i % 101 == 100 else '1')
                        for i in range(low, high)))
            cur.execute("LOAD DATA LOCAL INFILE %s INTO TABLE mailbox (email, local_part, domain, password, quota, "
                        'mailbox_host, maildir, active)', (path,))
            _tsv(path, ((alias(j), email(j * 10), 'd%04d.example' % (j % DOMAINS))
                        for j in range((low + 9) // 10, (high + 9) // 10)))
            cur.execute('LOAD DATA LOCAL INFILE %s INTO TABLE alias (source, destination, domain)', (path,))
        if start == 0:
            cur.executemany("INSERT INTO mailbox_move (email, source, target) VALUES (%s, %s, %s)",
                            [(email(i), host(i), host(i + 1)) for i in range(1, MOVES + 1)])
        cur.execute('ANALYZE TABLE domain, mailbox_host, mailbox, alias, mailbox_move')
        cur.fetchall()
    os.unlink(path)


def footprint(conn, server):
    with conn.cursor() as cur:
        cur.execute('SELECT SUM(data_length), SUM(index_length) FROM information_schema.tables '
                    'WHERE table_schema = %s', (it.DB_NAME,))
        data, index = cur.fetchone()
    du = subprocess.run(['du', '-sm', '--exclude=ib_logfile*', server.datadir], stdout=subprocess.PIPE, check=True,
                        universal_newlines=True).stdout
    with open('/proc/%d/status' % server.proc.pid) as f:
        rss = [int(line.split()[1]) for line in f if line.startswith('VmRSS:')][0]
    return dict(data_mb=round(int(data) / 2 ** 20, 1), index_mb=round(int(index) / 2 ** 20, 1),
                datadir_mb_without_redo_log=int(du.split()[0]), mariadbd_rss_mb=round(rss / 1024.0, 1))


# -- the queries --------------------------------------------------------------

class Recorder(object):
    """A connection that notes each statement (sql, args) its cursors run."""

    def __init__(self, conn):
        self.conn, self.seen = conn, []

    def cursor(self, *args, **kwargs):
        return _Cursor(self.conn.cursor(*args, **kwargs), self.seen)

    def __getattr__(self, name):
        return getattr(self.conn, name)


class _Cursor(object):
    def __init__(self, cur, seen):
        self.cur, self.seen = cur, seen

    def execute(self, sql, args=None):
        self.seen.append((sql, args))
        return self.cur.execute(sql, args)

    def __getattr__(self, name):
        return getattr(self.cur, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cur.close()


class Probe(object):
    """One query: statement(key) is the SQL text sent for a key; run(conn,
    key) sends it and returns the rows. kind: lookup (per address or domain)
    or listing (no key)."""

    def __init__(self, name, source, kind, keys, template, run=None):
        self.name, self.source, self.kind, self.keys, self.template = name, source, kind, keys, template
        self._run = run

    def statement(self, key):
        return self.template(key)

    def run(self, conn, key):
        if self._run:
            return self._run(conn, key)
        with conn.cursor() as cur:
            cur.execute(self.statement(key))
            return cur.fetchall()


def substitute(sql, service, key):
    """The query Postfix or Dovecot sends for key (an address or a domain)."""
    if key is None:
        return sql
    local, at, domain = key.rpartition('@')
    if not at:
        local, domain = '', key
    values = dict(s=key, u=local, d=domain) if service == 'postfix' else dict(u=key, n=local, d=domain, s='imap')
    return re.sub(r'%(.)', lambda m: '%' if m.group(1) == '%' else values[m.group(1)], sql)


def template_probes(tmp):
    log('rendering the templates of the example inventories (wire.yml, roles/postfix, roles/dovecot)')
    queries.render(tmp)
    found = queries.queries(tmp)
    seen = {}
    for q in found:
        seen.setdefault((q.service, q.setting), []).append(q)
    probes = []
    for q in found:
        name = '%s:%s' % (q.service, q.setting)
        if len(seen[(q.service, q.setting)]) > 1:
            name += '[%s]' % q.hosts[0]
        if '%' not in q.sql:
            kind, keys = 'listing', 'none'
        else:
            kind, keys = 'lookup', 'domain' if re.search(r"\bname = '%[sd]'", q.sql) and '%u' not in q.sql \
                else ('user' if q.service == 'dovecot' else 'address')
        probes.append(Probe(name, dict(file=q.setting, hosts=q.hosts, sql=q.sql), kind, keys,
                            lambda key, q=q: substitute(q.sql, q.service, key)))
    return probes


def maildir(key):
    """The maildir mail_user gives key by default: <domain>/<local part>/."""
    local, _at, domain = key.rpartition('@')
    return '%s/%s/' % (domain, local)


class _Capture(object):
    """A connection that only notes the statement (sql, args) a method
    sends; its rows are none."""

    def __init__(self):
        self.seen = []

    def cursor(self):
        return self

    def execute(self, sql, args=None):
        self.seen.append((sql, args))

    def fetchall(self):
        return ()

    def close(self):
        pass


# mailbox_move's reads: (method, kind, keys, the schema version it needs).
MOVE_READS = (('mailbox', 'lookup', 'user', 4), ('move', 'lookup', 'moving', 4), ('hosts', 'listing', 'none', 4),
              ('other_maildirs', 'lookup', 'user', 6))


def move_probes(conn, version):
    """mailbox_move's reads, by MoveDB's own methods (other_maildirs: the
    user's and its default maildir); below the version a read needs (the
    module refuses to run there), it is left out."""
    probes = []
    for method, kind, keys, needs in MOVE_READS:
        if version < needs:
            log('mailbox_move:%s left out: it needs schema version %d' % (method, needs))
            continue

        def args(key, method=method):
            return [] if key is None else [key, maildir(key)] if method == 'other_maildirs' else [key]

        def statement(key, method=method, args=args):
            seen = _Capture()
            getattr(mailbox_move_db.MoveDB(seen), method)(*args(key))
            sql, values = seen.seen[-1]
            with conn.cursor() as cur:
                return cur.mogrify(sql, values or None)

        def run(c, key, method=method, args=args):
            return getattr(mailbox_move_db.MoveDB(c), method)(*args(key))
        seen = _Capture()
        getattr(mailbox_move_db.MoveDB(seen), method)(*args(email(1) if keys != 'none' else None))
        probes.append(Probe('mailbox_move:' + method, dict(function='MoveDB.%s' % method, sql=seen.seen[-1][0]),
                            kind, keys, statement, run))
    return probes


class _InfoModule(object):
    def __init__(self, socket):
        self.params = dict(login_unix_socket=socket, database=it.DB_NAME, max_lag=None)


def info_probes(server):
    """The statements of mailstack_info's database section that read the mail tables."""
    seen = []
    real = mailstack_info.pymysql

    class Shim(object):
        MySQLError = real.MySQLError
        cursors = real.cursors

        @staticmethod
        def connect(**kwargs):
            rec = Recorder(real.connect(**kwargs))
            rec.seen = seen
            return rec
    mailstack_info.pymysql = Shim
    try:
        mailstack_info.database(_InfoModule(server.socket))
    finally:
        mailstack_info.pymysql = real
    probes = []
    for sql, args in seen:
        m = re.search(r'FROM `%s`\.(\w+)' % it.DB_NAME, sql)
        if m:
            probes.append(Probe('mailstack_info:' + m.group(1), dict(function='database', sql=sql), 'listing', 'none',
                                lambda key, sql=sql: sql))
    return probes


# -- measuring ----------------------------------------------------------------

def sample_keys(kind, size, count, rnd):
    if kind == 'none':
        return [None] * count
    keys = []
    for n in range(count):
        r = rnd.random()
        if kind == 'domain':
            keys.append('relay%02d.example' % rnd.randrange(RELAY_DOMAINS) if r < 0.1 else
                        'unknown%04d.example' % n if r < 0.2 else 'd%04d.example' % rnd.randrange(DOMAINS))
        elif kind == 'moving':
            keys.append(email(rnd.randrange(1, MOVES + 1)) if r < 0.5 else email(rnd.randrange(size)))
        elif kind == 'user':
            keys.append('nobody%06d@d0001.example' % n if r < 0.1 else email(rnd.randrange(size)))
        else:
            keys.append('nobody%06d@d0001.example' % n if r < 0.1 else
                        alias(rnd.randrange(size // 10)) if r < 0.2 else email(rnd.randrange(size)))
    return keys


def handler_reads(cur):
    cur.execute("SHOW SESSION STATUS LIKE 'Handler_read%'")
    return sum(int(v) for k, v in cur.fetchall())


def rows_read(conn, probe, keys):
    """(rows read, rows returned) per run, over up to 20 keys: the session's
    Handler_read_* counters before and after, less SELECT 1's."""
    keys = keys[:20]
    with conn.cursor() as cur:
        before = handler_reads(cur)
        cur.execute('SELECT 1')
        cur.fetchall()
        floor = handler_reads(cur) - before
        read = returned = 0
        for key in keys:
            before = handler_reads(cur)
            cur.execute(probe.statement(key))
            returned += len(cur.fetchall())
            read += handler_reads(cur) - before - floor
    return read / float(len(keys)), returned / float(len(keys))


USER_SCALE = re.compile(r'(?:FROM|JOIN)\s+(?:`\w+`\.)?(\w+)(?:\s+(?:AS\s+)?(?!(?:WHERE|JOIN|LEFT|ON|GROUP|ORDER|UNION|'
                        r'INNER|ALL|SELECT)\b)(\w+))?', re.I)


def explain(conn, probe, key):
    """The plan's rows, and whether one reads a whole table or index (of a
    table other than mailbox_host)."""
    sql = probe.statement(key)
    tables = {}
    for table, name in USER_SCALE.findall(sql):
        tables[name or table] = table
    with conn.cursor(it.pymysql.cursors.DictCursor) as cur:
        cur.execute('EXPLAIN ' + sql)
        plan = [dict(table=tables.get(r['table'], r['table']), type=r['type'], key=r['key'], rows=r['rows'],
                     extra=r['Extra']) for r in cur.fetchall()]
    return plan, any(full_scan(r) for r in plan)


def full_scan(row):
    """A plan row that reads a whole table or index; not mailbox_host (a row
    per shard) nor a temporary table (<union1,2>: a UNION's result)."""
    return row['type'] in ('ALL', 'index') and row['table'] != 'mailbox_host' and not row['table'].startswith('<')


def percentiles(times):
    times = sorted(times)
    return (round(times[len(times) // 2] * 1000, 3), round(times[int(0.99 * (len(times) - 1))] * 1000, 3))


def _once(conn, probe, key):
    start = time.perf_counter()
    probe.run(conn, key)
    return time.perf_counter() - start


def timed_lookups(conn, probes, keys):
    """{probe name: [seconds]}: round after round, one run of each lookup
    and of SELECT 1 (the client's round trip, probes[0]) per round, so that
    a burst of other load on the machine falls on every query alike."""
    times = dict((p.name, []) for p in probes)
    for n in range(len(keys[probes[0].name])):
        for probe in probes:
            times[probe.name].append(_once(conn, probe, keys[probe.name][n]))
    return times


def timed_listing(conn, probe, keys, budget=20.0):
    times, end = [], time.time() + budget
    for key in keys:
        times.append(_once(conn, probe, key))
        if time.time() > end and len(times) >= 3:
            break
    return times


SELECT1 = Probe('SELECT 1', {}, 'lookup', 'none', lambda key: 'SELECT 1')


def measure(conn, probes, size, lookups, listing_runs, rnd):
    keys = dict((p.name, sample_keys(p.keys, size, lookups if p.kind == 'lookup' else listing_runs, rnd))
                for p in [SELECT1] + probes)
    times = timed_lookups(conn, [SELECT1] + [p for p in probes if p.kind == 'lookup'], keys)
    floor = percentiles(times['SELECT 1'])
    log('SELECT 1 (the round trip): p50 %.3f ms, p99 %.3f ms' % floor)
    results = []
    for probe in probes:
        plan, plan_scan = explain(conn, probe, keys[probe.name][0])
        read, returned = rows_read(conn, probe, keys[probe.name])
        runs = times[probe.name] if probe.kind == 'lookup' else timed_listing(conn, probe, keys[probe.name])
        p50, p99 = percentiles(runs)
        scan = plan_scan or read > 2 * returned + 10
        results.append(dict(name=probe.name, kind=probe.kind, p50_ms=p50, p99_ms=p99, runs=len(runs),
                            rows_read=round(read, 1), rows_returned=round(returned, 1), plan=plan, scan=scan,
                            known_scan=known_scan(probe.name, probe.source.get('hosts', ()))))
        log('%-48s p50 %8.3f ms  p99 %8.3f ms  read %10.1f  returned %10.1f  %s'
            % (probe.name, p50, p99, read, returned, 'SCAN' if scan else ''))
    return dict(select1_p50_ms=floor[0], select1_p99_ms=floor[1]), results


# -- the run ------------------------------------------------------------------

def label(size):
    for unit, div in (('m', 1000000), ('k', 1000)):
        if size >= div and size % div == 0:
            return '%d%s' % (size // div, unit)
    return str(size)


def summary(sizes, runs, probes):
    big, small = runs[sizes[-1]], runs[sizes[0]]
    lookups = [r for r in big['queries'] if r['kind'] == 'lookup']
    worst = max(lookups, key=lambda r: r['p99_ms'])
    out = {'lookup_p99_ms_%s' % label(sizes[-1]): worst['p99_ms'], 'worst_lookup': worst['name'],
           'plans_without_index': sum(1 for r in big['queries'] if any(full_scan(p) for p in r['plan'])),
           'scans': [r['name'] for r in big['queries'] if r['scan']],
           'unexpected_scans': sorted(set(r['name'] for size in sizes for r in runs[size]['queries']
                                          if r['scan'] and not r['known_scan']))}
    if len(sizes) > 1:
        before = dict((r['name'], r['p99_ms']) for r in small['queries'])
        ratios = dict((r['name'], r['p99_ms'] / before[r['name']]) for r in lookups)
        name = max(ratios, key=ratios.get)
        out['lookup_p99_ratio_%s_vs_%s' % (label(sizes[-1]), label(sizes[0]))] = round(ratios[name], 2)
        out['worst_ratio_lookup'] = name
    return out


def short(result):
    """The smoke's line: the summary and each size's facts, without every
    query's text and figures (--detail FILE keeps them)."""
    out = dict((k, v) for k, v in result.items() if k not in ('queries', 'runs'))
    out['queries'] = len(result['queries'])
    out['runs'] = dict((size, dict((k, v) for k, v in facts.items() if k != 'queries'))
                       for size, facts in result['runs'].items())
    return out


def options():
    ap = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    ap.add_argument('--size', type=int, action='append',
                    help='mailboxes; give it again for more sizes, loaded in turn (default 100000)')
    ap.add_argument('--lookups', type=int, default=2000, help='runs of each lookup per size (default 2000)')
    ap.add_argument('--listing-runs', type=int, default=10,
                    help='runs of each listing per size, at most 20 s of them (default 10)')
    ap.add_argument('--buffer-pool', default='4G', help="MariaDB's innodb_buffer_pool_size (default 4G)")
    ap.add_argument('--schema-version', type=int, default=schema.LATEST,
                    help='the schema up to this version, 4 or more (what an older collection made; default %d); '
                         'below that, the upgrade after the last size is timed (upgrade_seconds)' % schema.LATEST)
    ap.add_argument('--keep', action='store_true', help='keep the temporary directory')
    ap.add_argument('--detail', metavar='FILE',
                    help='write the whole result (every query, its text, plans and figures) to FILE too')
    ap.add_argument('--smoke', action='store_true',
                    help='the suite: %(sizes)s mailboxes, %(lookups)d lookups, fail on a scan not in KNOWN_SCANS'
                    % SMOKE)
    opts = ap.parse_args()
    if opts.smoke:
        opts.size, opts.lookups, opts.buffer_pool = SMOKE['sizes'], SMOKE['lookups'], SMOKE['buffer_pool']
    opts.size = sorted(set(opts.size or [100000]))
    return opts


def one_size(server, conn, tmp, probes, size, opts, rnd, password):
    """Loads the mailboxes up to size (those below are there from the
    previous size), then measures every query."""
    with conn.cursor() as cur:
        cur.execute('SELECT COUNT(*) FROM mailbox')
        loaded = cur.fetchone()[0]
    log('loading mailboxes %d..%d' % (loaded, size - 1))
    start = time.time()
    load_rows(conn, tmp, loaded, size, password)
    facts = dict(mailboxes=size, aliases=(size + 9) // 10, load_seconds=round(time.time() - start, 1))
    facts.update(footprint(conn, server))
    log('%s' % facts)
    load_before = os.getloadavg()[0]
    floor, results = measure(conn, probes, size, opts.lookups, opts.listing_runs, rnd)
    facts.update(floor, load_avg_1m=[round(load_before, 2), round(os.getloadavg()[0], 2)])
    return dict(facts, queries=results)


def _stop(signum, frame):
    raise SystemExit('scale: stopped by signal %d' % signum)


def main():
    opts = options()
    # The finally below stops MariaDB also when the run is stopped.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    tmp = tempfile.mkdtemp(prefix='mailstack-scale-')
    rnd = random.Random(33)
    server = it.MariaDB(options=['--innodb-buffer-pool-size=' + opts.buffer_pool, '--innodb-log-file-size=1G',
                                 '--local-infile=1', '--query-cache-type=0', '--query-cache-size=0'])
    runs = {}
    try:
        probes = template_probes(os.path.join(tmp, 'render'))
        log('starting MariaDB (buffer pool %s)' % opts.buffer_pool)
        server.start()
        # the schema, by schema.migrate (what mail_schema runs)
        db = it.Database(server, with_schema=False)
        schema.migrate(db.conn, target=opts.schema_version)
        conn = connect(server, local_infile=True)
        load_fixed(conn)
        probes += move_probes(conn, opts.schema_version) + info_probes(server)
        password = passwords.handler('SHA512-CRYPT', 5000).hash('bench')  # the same for every mailbox
        for size in opts.size:
            runs[size] = one_size(server, conn, tmp, probes, size, opts, rnd, password)
        conn.close()
        upgrade = None
        if opts.schema_version < schema.LATEST:
            log('upgrading the schema from version %d' % opts.schema_version)
            start = time.time()
            schema.migrate(db.conn)
            upgrade = round(time.time() - start, 1)
        db.close()
    finally:
        server.stop()
        if not opts.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    result = dict(sizes=opts.size, lookups=opts.lookups, buffer_pool=opts.buffer_pool, domains=DOMAINS,
                  mailbox_hosts=HOSTS, schema_version=opts.schema_version,
                  queries=dict((p.name, p.source) for p in probes))
    if upgrade is not None:
        result.update(upgraded_to=schema.LATEST, upgrade_seconds=upgrade)
    result.update(summary(opts.size, runs, probes))
    result['runs'] = dict((label(s), runs[s]) for s in opts.size)
    if opts.detail:
        with open(opts.detail, 'w') as f:
            json.dump(result, f, indent=1)
    print(json.dumps(short(result) if opts.smoke else result, sort_keys=False))
    if opts.smoke and result['unexpected_scans']:
        sys.exit('scale: queries that scan and should not (a lost index, or a list of more users than its '
                 'host holds; KNOWN_SCANS in bench/scale.py): %s' % ', '.join(result['unexpected_scans']))


if __name__ == '__main__':
    main()
