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
