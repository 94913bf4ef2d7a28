# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Versioned migrations of the mail schema.

One schema for every topology. ``schema_version`` records each applied
migration; applying is a no-op when the database is current. A newer
collection appends migrations to MIGRATIONS (never edits an applied one), so
an older schema is upgraded in order. MariaDB commits DDL implicitly, so each
migration records itself right after its statements; a named lock keeps two
concurrent runs from applying the same migration twice.

Postfix and Dovecot read these tables (read-only accounts), for example::

    # Postfix virtual_mailbox_domains
    SELECT name FROM domain WHERE name = '%s' AND active = 1 AND kind = 'local'
    # Postfix relay_domains (the mail server: accepted here, forwarded to relay_host)
    SELECT name FROM domain WHERE name = '%s' AND active = 1 AND kind = 'relay'
    # Postfix transport_maps (the mail server: the next hop of a relay domain)
    SELECT CONCAT('relay:', relay_host) FROM domain
        WHERE name = '%s' AND active = 1 AND kind = 'relay' AND relay_host <> ''
    # Postfix relay_domains (backup MX: it relays the local domains to the primary)
    SELECT name FROM domain WHERE name = '%s' AND active = 1 AND kind = 'local'
    # Postfix virtual_mailbox_maps
    SELECT maildir FROM mailbox WHERE email = '%s' AND active = 1
    # Postfix virtual_alias_maps
    SELECT destination FROM alias WHERE source = '%s' AND active = 1
    # Dovecot passdb / userdb
    SELECT email AS user, password FROM mailbox WHERE email = '%u' AND active = 1
    # Postfix transport_maps (the sharded SMTP tier: each user's shard, or
    # the transport held, in defer_transports, while the mailbox is being moved)
    SELECT IF(m.hold_until > NOW(), 'held:...', CONCAT('lmtp:inet:[', h.address, ']:24'))
        FROM mailbox m JOIN mailbox_host h ON h.name = m.mailbox_host WHERE m.email = '%s'
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import schema_version

_TABLE_OPTS = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci'

# Python's whitespace (str.isspace: what str.strip removes), as a PCRE
# character class in an SQL string (test_mailbox_move_db.py checks each).
_WHITESPACE = (r'\\t-\\r\\x{1c}-\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}'
               r'\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}')
# A maildir not in its plain form (mailbox_move_fs._relative would change
# more than one trailing /): empty, a leading /, //, a . or .. component,
# whitespace at either end (migration 6).
MAILDIR_ODD = r'^$|^/|//|(^|/)[.][.]?(/|$)|^[%s]|[%s]$' % (_WHITESPACE, _WHITESPACE)

# (version, description, [statements])
MIGRATIONS = [
    (1, 'domains, mailbox hosts, mailboxes, aliases', [
        """CREATE TABLE IF NOT EXISTS domain (
            name VARCHAR(253) NOT NULL,
            kind ENUM('local', 'relay') NOT NULL DEFAULT 'local',
            active TINYINT(1) NOT NULL DEFAULT 1,
            created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            modified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
            PRIMARY KEY (name),
            KEY domain_kind_active (kind, active)
        ) %s""" % _TABLE_OPTS,
        """CREATE TABLE IF NOT EXISTS mailbox_host (
            name VARCHAR(255) NOT NULL,
            address VARCHAR(255) NOT NULL,
            state ENUM('active', 'draining', 'readonly') NOT NULL DEFAULT 'active',
            weight INT UNSIGNED NOT NULL DEFAULT 100,
            created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            modified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
            PRIMARY KEY (name)
        ) %s""" % _TABLE_OPTS,
        """CREATE TABLE IF NOT EXISTS mailbox (
            email VARCHAR(254) NOT NULL,
            local_part VARCHAR(64) NOT NULL,
            domain VARCHAR(253) NOT NULL,
            password VARCHAR(255) NOT NULL,
            quota BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'bytes, 0 = unlimited',
            mailbox_host VARCHAR(255) NULL DEFAULT NULL,
            maildir VARCHAR(512) NOT NULL COMMENT 'relative to the mail root',
            active TINYINT(1) NOT NULL DEFAULT 1,
            created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            modified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
            PRIMARY KEY (email),
            KEY mailbox_domain (domain),
            KEY mailbox_host_idx (mailbox_host),
            CONSTRAINT mailbox_domain_fk FOREIGN KEY (domain) REFERENCES domain (name)
                ON UPDATE CASCADE ON DELETE RESTRICT,
            CONSTRAINT mailbox_host_fk FOREIGN KEY (mailbox_host) REFERENCES mailbox_host (name)
                ON UPDATE CASCADE ON DELETE RESTRICT
        ) %s""" % _TABLE_OPTS,
        """CREATE TABLE IF NOT EXISTS alias (
            id INT UNSIGNED NOT NULL AUTO_INCREMENT,
            source VARCHAR(254) NOT NULL COMMENT 'address, or @domain for a catch-all',
            destination VARCHAR(254) NOT NULL,
            domain VARCHAR(253) NOT NULL COMMENT 'domain of source',
            active TINYINT(1) NOT NULL DEFAULT 1,
            created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            modified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
            PRIMARY KEY (id),
            UNIQUE KEY alias_source_destination (source, destination),
            KEY alias_domain (domain),
            KEY alias_destination (destination),
            CONSTRAINT alias_domain_fk FOREIGN KEY (domain) REFERENCES domain (name)
                ON UPDATE CASCADE ON DELETE RESTRICT
        ) %s""" % _TABLE_OPTS,
    ]),
    (2, 'domain.relay_host: next hop of a relay domain', [
        # IF NOT EXISTS: safe to re-run after a failure between the ALTER
        # (committed implicitly) and the schema_version row.
        'ALTER TABLE domain ADD COLUMN IF NOT EXISTS relay_host VARCHAR(255) NULL DEFAULT NULL AFTER kind',
    ]),
    (3, 'moving mailboxes between shards: mailbox.hold_until, mailbox_move', [
        # While hold_until is in the future the SMTP tier holds the user's
        # mail in its queue and the proxies and shards delay the user's logins.
        'ALTER TABLE mailbox ADD COLUMN IF NOT EXISTS hold_until DATETIME NULL DEFAULT NULL AFTER mailbox_host',
        # One row per move in progress (or done, until its source copy is
        # removed): what mailbox_move resumes or rolls back.
        """CREATE TABLE IF NOT EXISTS mailbox_move (
            email VARCHAR(254) NOT NULL,
            source VARCHAR(255) NOT NULL,
            target VARCHAR(255) NOT NULL,
            state ENUM('copying', 'held', 'done') NOT NULL DEFAULT 'copying',
            started TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            modified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
            PRIMARY KEY (email),
            CONSTRAINT mailbox_move_email_fk FOREIGN KEY (email) REFERENCES mailbox (email)
                ON UPDATE CASCADE ON DELETE CASCADE
        ) %s""" % _TABLE_OPTS,
    ]),
    (4, 'mailbox_move: a lock (owner, expiry), the dsync state, the source status at the final sync', [
        # The lock of one move: its owner (host:pid) and when it expires.
        'ALTER TABLE mailbox_move ADD COLUMN IF NOT EXISTS owner VARCHAR(255) NULL DEFAULT NULL AFTER state',
        'ALTER TABLE mailbox_move ADD COLUMN IF NOT EXISTS lock_until DATETIME NULL DEFAULT NULL AFTER owner',
        # doveadm sync -s: each pass incremental from the last one's state.
        'ALTER TABLE mailbox_move ADD COLUMN IF NOT EXISTS sync_state MEDIUMTEXT NULL AFTER lock_until',
        # What the source copy was when the final sync left it: the cleanup
        # removes it only while it is still that.
        'ALTER TABLE mailbox_move ADD COLUMN IF NOT EXISTS source_status MEDIUMTEXT NULL AFTER sync_state',
    ]),
    (5, 'mailbox: index (mailbox_host, active) in place of (mailbox_host): a shard lists its users from the index', [
        # A shard's iterate_query (WHERE mailbox_host = ... AND active = 1)
        # reads the index alone, no row (bench/run scale: 2.6 times faster
        # at 1,000,000 mailboxes).
        # The new index serves the foreign key, so the old one goes in the
        # same statement; built online (lookups and writes go on), and safe
        # to re-run after a failure before the schema_version row.
        'ALTER TABLE mailbox ALGORITHM=INPLACE, LOCK=NONE, '
        'ADD INDEX IF NOT EXISTS mailbox_host_active (mailbox_host, active), DROP INDEX IF EXISTS mailbox_host_idx',
    ]),
    (6, 'mailbox: maildir_odd and index (maildir_odd, maildir): the maildirs that may hold a path, from the index', [
        # mailbox_move, before it removes a user's copy, reads the other
        # maildirs that may be that path, hold it or lie inside it
        # (MoveDB.other_maildirs; copy_path applies the exact test). A
        # maildir in its plain form (maildir_odd = 0) is found by the index
        # as the path itself, one of its parents, or under it (a prefix);
        # maildir_odd = 1 marks every other form, read whole: empty, a
        # leading /, //, a . or .. component, or Python's whitespace
        # (str.strip) at either end. The column is virtual (nothing stored
        # in the rows) and invisible (SELECT * and INSERT without a column
        # list are unchanged); MariaDB adds a virtual column in place but
        # only alone, so the index is a second statement. Both are online
        # and safe to re-run after a failure before the schema_version row.
        'ALTER TABLE mailbox ALGORITHM=INPLACE, LOCK=NONE, ADD COLUMN IF NOT EXISTS maildir_odd TINYINT(1) AS '
        "(maildir REGEXP '%s') VIRTUAL INVISIBLE" % MAILDIR_ODD,
        'ALTER TABLE mailbox ALGORITHM=INPLACE, LOCK=NONE, '
        'ADD INDEX IF NOT EXISTS mailbox_maildir (maildir_odd, maildir)',
    ]),
]

LATEST = MIGRATIONS[-1][0]
LOCK_NAME = 'mailops_mailstack_schema'

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INT UNSIGNED NOT NULL,
    description VARCHAR(255) NOT NULL,
    applied TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (version)
) %s""" % _TABLE_OPTS


class SchemaError(Exception):
    pass


def current_version(conn):
    return schema_version(conn)


def pending(version):
    return [m for m in MIGRATIONS if m[0] > version]


def migrate(conn, check_mode=False, target=None, lock_timeout=60):
    """Apply pending migrations up to target (default LATEST).

    Returns (version_before, version_after, [applied descriptions]).
    """
    target = LATEST if target is None else target
    cur = conn.cursor()
    locked = False
    try:
        if not check_mode:
            cur.execute('SELECT GET_LOCK(%s, %s)', (LOCK_NAME, lock_timeout))
            if cur.fetchone()[0] != 1:
                raise SchemaError('Could not take the schema lock %r within %ds (another migration running?)'
                                  % (LOCK_NAME, lock_timeout))
            locked = True
        before = current_version(conn)
        if before > LATEST:
            raise SchemaError('The mail schema is at version %d, newer than this collection knows (%d): '
                              'upgrade the collection.' % (before, LATEST))
        todo = [m for m in pending(before) if m[0] <= target]
        applied = ['%d: %s' % (v, d) for v, d, s in todo]
        if check_mode or not todo:
            return before, (todo[-1][0] if todo else before), applied
        cur.execute(_VERSION_TABLE)
        for version, description, statements in todo:
            for stmt in statements:
                cur.execute(stmt)
            cur.execute('INSERT INTO schema_version (version, description) VALUES (%s, %s)',
                        (version, description))
            conn.commit()
        return before, current_version(conn), applied
    finally:
        if locked:
            cur.execute('SELECT RELEASE_LOCK(%s)', (LOCK_NAME,))
            cur.fetchone()
        cur.close()
