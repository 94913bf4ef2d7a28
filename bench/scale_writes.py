# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A one-off measurement for docs/performance.md (issue 33 item 2), not a
benchmark of the suite: what writes cost with schema migration 6's maildir
index, and with per-host user counts kept by triggers (the alternative to
the shard summary's scan of an index, not in the collection).

On one throw-away MariaDB, two rounds of: schema 5, schema 6, schema 5 with
the triggers; each inserts 100,000 mailboxes as mail_user writes them
(multi-row INSERT, batches of 1,000, one transaction), then flips 1,000
users' host as mailbox_move does (one transaction each), and with the
triggers checks their counts against COUNT(*).

Usage: PYTHONPATH=tests/lib:.cache/collections nice -n 19 .venv/bin/python bench/scale_writes.py
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import time

from ansible_collections.mailops.mailstack.plugins.module_utils import schema
from mailstack_testlib import mariadb as it

N = 100000
TRIGGERS = [
    "ALTER TABLE mailbox_host ADD COLUMN users INT NOT NULL DEFAULT 0",
    "CREATE TRIGGER mailbox_ai AFTER INSERT ON mailbox FOR EACH ROW "
    "UPDATE mailbox_host SET users = users + 1 WHERE name = NEW.mailbox_host",
    "CREATE TRIGGER mailbox_ad AFTER DELETE ON mailbox FOR EACH ROW "
    "UPDATE mailbox_host SET users = users - 1 WHERE name = OLD.mailbox_host",
    "CREATE TRIGGER mailbox_au AFTER UPDATE ON mailbox FOR EACH ROW BEGIN "
    "IF NOT (OLD.mailbox_host <=> NEW.mailbox_host) THEN "
    "UPDATE mailbox_host SET users = users - 1 WHERE name = OLD.mailbox_host; "
    "UPDATE mailbox_host SET users = users + 1 WHERE name = NEW.mailbox_host; END IF; END",
]
server = it.MariaDB(options=['--innodb-buffer-pool-size=1G'])
server.start()
try:
    res = {}
    for rnd in range(2):
        for variant in ('v5', 'v6', 'v5+triggers'):
            db = it.Database(server, with_schema=False)
            schema.migrate(db.conn, target=6 if variant == 'v6' else 5)
            c = db.conn.cursor()
            if variant.endswith('triggers'):
                for s in TRIGGERS:
                    c.execute(s)
            c.executemany('INSERT INTO domain (name) VALUES (%s)', ['d%04d.example' % d for d in range(1000)])
            c.executemany('INSERT INTO mailbox_host (name, address) VALUES (%s, %s)',
                          [('ms%d' % (h + 1), '10.0.0.%d' % h) for h in range(100)])
            db.conn.commit()
            rows = [('u%08d@d%04d.example' % (i, i % 1000), 'u%08d' % i, 'd%04d.example' % (i % 1000), '{PLAIN}x',
                     0, 'ms%d' % (i % 100 + 1), 'd%04d.example/u%08d/' % (i % 1000, i), 1) for i in range(N)]
            sql = ('INSERT INTO mailbox (email, local_part, domain, password, quota, mailbox_host, maildir, active) '
                   'VALUES (%s, %s, %s, %s, %s, %s, %s, %s)')
            start = time.perf_counter()
            for k in range(0, N, 1000):
                c.executemany(sql, rows[k:k + 1000])
            db.conn.commit()
            took = time.perf_counter() - start
            # a flip of 1000 users' host (mailbox_move's UPDATE), one transaction each
            start = time.perf_counter()
            for i in range(1000):
                c.execute('UPDATE mailbox SET mailbox_host = %s WHERE email = %s',
                          ('ms%d' % ((i + 1) % 100 + 1), rows[i][0]))
                db.conn.commit()
            flips = time.perf_counter() - start
            res.setdefault(variant, []).append((round(took, 2), round(flips, 2)))
            if variant.endswith('triggers'):
                c.execute('SELECT name, users FROM mailbox_host')
                counted = dict(c.fetchall())
                c.execute('SELECT mailbox_host, COUNT(*) FROM mailbox GROUP BY mailbox_host')
                assert counted == dict(c.fetchall())
            print(variant, rnd, 'insert 100k: %.2f s, 1000 flips: %.2f s' % (took, flips), flush=True)
            db.close()
    print(res)
finally:
    server.stop()
