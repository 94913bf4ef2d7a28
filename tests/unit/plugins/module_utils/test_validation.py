# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.mailops.mailstack.plugins.module_utils.validation import (
    PlacementError, Placer, normalize_domain, parse_bool, parse_quota, split_email,
)


@pytest.mark.parametrize('value, expected', [
    ('0', 0), (0, 0), ('1024', 1024), (1024, 1024), ('2G', 2 * 1024 ** 3), ('500M', 500 * 1024 ** 2),
    ('500m', 500 * 1024 ** 2), ('1.5GiB', 3 * 1024 ** 3 // 2), ('10K', 10240), ('1 T', 1024 ** 4),
    (' 2GB ', 2 * 1024 ** 3),
])
def test_quota_ok(value, expected):
    assert parse_quota(value) == expected


@pytest.mark.parametrize('value, fragment', [
    ('-1', 'negative'), ('-1G', 'negative'), (-5, 'negative'), ('12 apples', 'not a size'), ('', 'not a size'),
    ('1.5', 'whole number'), (True, 'boolean'), ('G', 'not a size'), ([1], 'got list'), ('2X', 'not a size'),
])
def test_quota_bad(value, fragment):
    with pytest.raises(ValueError) as e:
        parse_quota(value)
    assert fragment in str(e.value)


@pytest.mark.parametrize('value, expected', [
    ('Alice@Example.ORG', ('alice@example.org', 'alice', 'example.org')),
    ('first.last+tag@sub.example.org', ('first.last+tag@sub.example.org', 'first.last+tag', 'sub.example.org')),
    ('user@bücher.example', ('user@xn--bcher-kva.example', 'user', 'xn--bcher-kva.example')),
    ('x@example.org.', ('x@example.org', 'x', 'example.org')),
])
def test_email_ok(value, expected):
    assert split_email(value) == expected


@pytest.mark.parametrize('value', [
    'no-at-sign', 'two@@example.org', '@example.org', 'a..b@example.org', '.a@example.org', 'a.@example.org',
    'a b@example.org', 'x@localhost', 'x@-bad.example', 'x@example.123', 'x' * 65 + '@example.org',
    'x@' + 'a' * 64 + '.example', 'x@exa_mple.org', 5,
])
def test_email_bad(value):
    with pytest.raises(ValueError):
        split_email(value)


def test_catchall_only_when_allowed():
    assert split_email('@Example.org', allow_catchall=True) == ('@example.org', '', 'example.org')
    with pytest.raises(ValueError):
        split_email('@example.org')


def test_domain():
    assert normalize_domain('EXAMPLE.org') == 'example.org'
    with pytest.raises(ValueError):
        normalize_domain('a' * 250 + '.example')


@pytest.mark.parametrize('value, expected', [('yes', True), ('no', False), ('1', True), ('0', False),
                                             (True, True), ('False', False)])
def test_bool(value, expected):
    assert parse_bool(value) is expected


def test_bool_bad():
    with pytest.raises(ValueError):
        parse_bool('maybe')


HOSTS = {'a': ('active', 100), 'b': ('active', 300), 'c': ('draining', 100), 'd': ('readonly', 100)}


def test_fewest_users_counts_existing_and_new():
    p = Placer(HOSTS, {'a': 5, 'b': 0, 'c': 0}, 'fewest_users')
    placed = [p.place('u%d@x.example' % i) for i in range(9)]
    assert placed[:5] == ['b'] * 5
    assert placed.count('a') == 2 and placed.count('b') == 7
    assert 'c' not in placed and 'd' not in placed


def test_weighted_proportional():
    p = Placer(HOSTS, {}, 'weighted')
    placed = [p.place('u%d@x.example' % i) for i in range(400)]
    assert placed.count('a') == 100 and placed.count('b') == 300


def test_weight_zero_excluded():
    p = Placer({'a': ('active', 0), 'b': ('active', 1)}, {}, 'weighted')
    assert set(p.place('u%d@x.example' % i) for i in range(10)) == {'b'}


def test_stable_hash_is_stable_and_weighted():
    p1 = Placer(HOSTS, {}, 'stable_hash')
    p2 = Placer(HOSTS, {'a': 1000}, 'stable_hash')
    emails = ['user%d@x.example' % i for i in range(4000)]
    first = [p1.place(e) for e in emails]
    assert first == [p2.place(e) for e in emails]  # counts do not matter
    share_b = first.count('b') / float(len(first))
    assert 0.70 < share_b < 0.80  # weight 300 of 400
    # adding a host moves only addresses to the new host
    hosts = dict(HOSTS, e=('active', 100))
    p3 = Placer(hosts, {}, 'stable_hash')
    for e, old in zip(emails, first):
        new = p3.place(e)
        assert new == old or new == 'e'


def test_no_accepting_host():
    p = Placer({'c': ('draining', 100)}, {}, 'fewest_users')
    with pytest.raises(PlacementError):
        p.place('x@x.example')


def test_no_hosts_at_all_means_no_placement():
    assert Placer({}, {}, 'stable_hash').place('x@x.example') is None
