# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.module_utils import schema


def test_migrations_are_numbered_in_order():
    versions = [m[0] for m in schema.MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1))
    assert schema.LATEST == versions[-1]


def test_tables_are_innodb_utf8mb4():
    for version, description, statements in schema.MIGRATIONS:
        for stmt in statements:
            if stmt.lstrip().upper().startswith('CREATE TABLE'):
                assert 'ENGINE=InnoDB' in stmt and 'utf8mb4' in stmt


def test_pending():
    assert [m[0] for m in schema.pending(0)] == [m[0] for m in schema.MIGRATIONS]
    assert schema.pending(schema.LATEST) == []


def test_alter_statements_can_be_rerun():
    """DDL commits implicitly: a migration that died before its schema_version row is applied
    again, so its ALTERs must not fail on a column that is already there."""
    for version, description, statements in schema.MIGRATIONS:
        for stmt in statements:
            text = ' '.join(stmt.upper().split())
            if text.startswith('ALTER TABLE'):
                for verb in ('ADD COLUMN', 'ADD INDEX', 'DROP INDEX'):
                    if ' %s ' % verb in text:
                        assert ' %s IF ' % verb in text, (version, stmt)


def test_migration_2_adds_relay_host():
    version, description, statements = schema.MIGRATIONS[1]
    assert version == 2 and 'relay_host' in description
    assert statements == ['ALTER TABLE domain ADD COLUMN IF NOT EXISTS relay_host VARCHAR(255) NULL DEFAULT NULL '
                          'AFTER kind']


def test_migration_5_replaces_the_mailbox_host_index_online():
    version, description, statements = schema.MIGRATIONS[4]
    assert version == 5
    text = ' '.join(' '.join(statements).split())
    assert 'ADD INDEX IF NOT EXISTS mailbox_host_active (mailbox_host, active)' in text
    assert 'DROP INDEX IF EXISTS mailbox_host_idx' in text
    # One statement: the foreign key on mailbox_host always has an index.
    assert len(statements) == 1 and 'LOCK=NONE' in text
