# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role firewall's rules file, rendered from its template for every mail
host of every example inventory (the firewall on: mailstack_testlib.firewall),
handed to the real nft (Debian's nftables, scripts/test-host-packages.sh)
in a network namespace of its own (unshare --net: the host's tables are
never touched):

- `nft -c -f` accepts every host's file (what the role's template task
  runs as its validate before installing it);
- one file loaded with `nft -f` beside another table: the table inet
  mailstack is there with the rules in the file's order, the other table
  stays (the file never flushes the ruleset), and loading it again
  replaces the table whole (one transaction), not appending to it.

Needs root (unshare --net); fails, not skips, without nft: a skip would
hide that the rules were never checked.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shutil
import subprocess

import pytest

from ansible_collections.mailops.mailstack.plugins.filter.firewall import mail_firewall_ruleset

from mailstack_testlib.firewall import ADMIN_NETWORKS, SSH_CLIENT, TOPOLOGIES, mail_hosts, wired
from mailstack_testlib.templates import render

NFT = shutil.which('nft') or '/usr/sbin/nft'


def _namespace(script, path):
    """Run script (sh) in a new network namespace with $F the file; (rc, output)."""
    if not os.path.exists(NFT):
        pytest.fail('no nft at %s: run scripts/test-host-packages.sh (Debian package nftables)' % NFT)
    result = subprocess.run(['unshare', '--net', 'sh', '-ec', script], env=dict(os.environ, F=str(path), NFT=NFT),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60,
                            check=False)
    return result.returncode, result.stdout


def rules_file(wiring, host, folder):
    """The role's template rendered for host, as the template task writes it."""
    text = render('firewall', 'etc/mailstack/firewall.nft.j2',
                  _filters={'mailops.mailstack.mail_firewall_ruleset': mail_firewall_ruleset},
                  inventory_hostname=host, firewall_rules=wiring['hosts'][host]['options']['firewall_rules'],
                  firewall_admin_networks=ADMIN_NETWORKS, firewall__ssh_client={'stdout': SSH_CLIENT},
                  firewall_extra_rules=[{'port': 9100, 'sources': ['203.0.113.50'], 'comment': 'node exporter'}])
    path = folder / ('%s.nft' % host)
    path.write_text(text)
    return path, text


@pytest.mark.parametrize('topology', TOPOLOGIES)
def test_nft_accepts_the_rules_of_every_mail_host(topology, tmp_path):
    groups, _hostvars, wiring = wired(topology)
    assert wiring['errors'] == [], wiring['errors']
    hosts = mail_hosts(groups, wiring)
    assert hosts
    for host in hosts:
        path, _text = rules_file(wiring, host, tmp_path)
        rc, output = _namespace('"$NFT" -c -f "$F"', path)
        assert rc == 0, '%s %s: nft -c -f refuses the rules:\n%s' % (topology, host, output)


def _rules(listing):
    """The rule lines of a listing of the chain input (no chain type line)."""
    lines = [line.strip() for line in listing.splitlines()]
    start = lines.index('type filter hook input priority filter; policy drop;') + 1
    return [line for line in lines[start:] if line and line != '}']


def test_nft_loads_the_rules_as_one_table_and_leaves_the_other_tables(tmp_path):
    _groups, _hostvars, wiring = wired('sharded')
    path, text = rules_file(wiring, 'ms1', tmp_path)
    rc, output = _namespace(
        # Another table, as a container runtime's would be; then the rules
        # twice (the second load replaces the table: no rule twice).
        '"$NFT" add table ip other; "$NFT" add chain ip other keep; '
        '"$NFT" -f "$F"; "$NFT" -f "$F"; '
        'echo "=== tables"; "$NFT" list tables; echo "=== mailstack"; "$NFT" list table inet mailstack', path)
    assert rc == 0, output
    tables, listed = output.split('=== tables\n', 1)[1].split('=== mailstack\n', 1)
    assert sorted(tables.split('\n')[:-1]) == ['table inet mailstack', 'table ip other']
    expected = [line.strip() for line in text.split('policy drop;\n', 1)[1].splitlines()
                if line.strip() and not line.strip().startswith('#') and line.strip() != '}']
    # nft lists the loopback by name in quotes; everything else as written.
    assert _rules(listed) == [line.replace('iif lo', 'iif "lo"') for line in expected]
    assert 'ip saddr 198.51.100.32 tcp dport 24245 accept' in _rules(listed)  # doveadm from ms2 only
    assert _rules(listed)[-1] == 'meta l4proto tcp reject with tcp reset'


def test_nft_refuses_a_broken_file(tmp_path):
    # The check the role's template task relies on can fail.
    path = tmp_path / 'broken.nft'
    path.write_text(mail_firewall_ruleset([], ['203.0.113.0/24'], SSH_CLIENT, []).replace('tcp dport', 'tcp dprt'))
    rc, output = _namespace('"$NFT" -c -f "$F"', path)
    assert rc != 0 and 'dprt' in output, output
