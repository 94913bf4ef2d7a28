# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

import pytest

from ansible_collections.mailops.mailstack.plugins.module_utils import passwords

FORMATS = {
    'SHA512-CRYPT': r'^\{SHA512-CRYPT\}\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$',
    'SHA256-CRYPT': r'^\{SHA256-CRYPT\}\$5\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{43}$',
    'BLF-CRYPT': r'^\{BLF-CRYPT\}\$2y\$05\$[./0-9A-Za-z]{53}$',
    'ARGON2ID': r'^\{ARGON2ID\}\$argon2id\$v=19\$m=65536,t=3,p=1\$[^$]+\$[^$]+$',
}


@pytest.mark.parametrize('scheme', list(passwords.SCHEMES))
def test_default_format_matches_doveadm(scheme):
    if scheme not in passwords.available_schemes():
        pytest.skip('argon2-cffi not installed')
    h = passwords.hash_password('s3cret', scheme)
    assert re.match(FORMATS[scheme], h), h
    assert passwords.verify_password('s3cret', h)
    assert not passwords.verify_password('s3cret!', h)
    s, raw = passwords.split_hash(h)
    assert s == scheme and passwords.hash_cost(s, raw) == passwords.DEFAULT_COST[scheme]
    assert passwords.password_is_current('s3cret', h, scheme, passwords.DEFAULT_COST[scheme])


def test_rounds_are_written_and_compared():
    h = passwords.hash_password('pw', 'SHA512-CRYPT', 6000)
    assert '$6$rounds=6000$' in h
    assert passwords.password_is_current('pw', h, 'SHA512-CRYPT', 6000)
    assert not passwords.password_is_current('pw', h, 'SHA512-CRYPT', 5000)
    assert not passwords.password_is_current('pw', h, 'SHA256-CRYPT', 5000)


@pytest.mark.parametrize('scheme, cost', [('SHA512-CRYPT', 999), ('BLF-CRYPT', 3), ('BLF-CRYPT', 32), ('MD5', None),
                                          ('SHA256-CRYPT', True)])
def test_bad_scheme_or_cost(scheme, cost):
    with pytest.raises(ValueError):
        passwords.check_scheme(scheme, cost)


def test_unknown_stored_scheme_never_verifies():
    assert not passwords.verify_password('x', '{PLAIN}x')
    assert passwords.split_hash('$6$abc$def') == ('SHA512-CRYPT', '$6$abc$def')
    assert passwords.split_hash('{plain}x')[0] == 'PLAIN'


def test_hash_many_parallel_in_order():
    jobs = [('pw%d' % i, 'SHA256-CRYPT', 1000) for i in range(40)]
    hashes = list(passwords.hash_many(iter(jobs), len(jobs), workers=2, chunk_size=4))
    assert len(hashes) == 40
    for (pw, s, c), h in zip(jobs, hashes):
        assert passwords.verify_password(pw, h)
    checks = list(passwords.verify_many(((j[0] if i % 3 else 'wrong', h, 'SHA256-CRYPT', 1000)
                                         for i, (j, h) in enumerate(zip(jobs, hashes))), 40, workers=2))
    assert checks == [bool(i % 3) for i in range(40)]
