# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operator's port table: which tier opens which port to which tier,
made from the wiring's listens (each role's wiring file declares them,
wire() lists them per host). scripts/port_tables.py writes the tables of the
example inventories into the docs; tests/unit/test_ports_docs.py checks them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.topology import MAIL_GROUPS
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import CONTROLLER, INTERNET

WORDS = {INTERNET: 'the internet', CONTROLLER: 'the controller (Ansible)'}


def tier(host, groups):
    """A host's tier: the mail groups it is in, in the order of MAIL_GROUPS."""
    return tuple(group for group in MAIL_GROUPS if host in (groups.get(group) or ()))


def _tier_text(names):
    return ' + '.join('`%s`' % name for name in names) if names else 'other hosts'


def _peers_text(peers, groups):
    """The peers by tier (a word as itself), each once, in order."""
    seen = []
    for peer in peers:
        text = WORDS.get(peer) or _tier_text(tier(peer, groups))
        if text not in seen:
            seen.append(text)
    return ', '.join(seen)


def port_rows(groups, wiring):
    """[(to, hosts, port, service, from)]: one row per tier, port and service,
    the hosts of the tier that open it, in the inventory's order of hosts
    (groups: the inventory's; wiring: wire()'s result)."""
    rows = []
    for host in groups.get('all') or sorted(wiring['hosts']):
        if host not in wiring['hosts']:
            continue
        for item in wiring['hosts'][host]['listens']:
            key = (_tier_text(tier(host, groups)), '%s/%s' % (item['port'], item['proto']), item['service'],
                   _peers_text(item['peers'], groups))
            same = [row for row in rows if row[:1] + row[2:] == key]
            if same:
                same[0][1].append(host)
            else:
                rows.append((key[0], [host]) + key[1:])
    return [(to, ', '.join(hosts), port, service, sources) for to, hosts, port, service, sources in rows]


def port_table(groups, wiring):
    """The rows as a Markdown table."""
    lines = ['| tier (hosts) | port | service | open to |', '|---|---|---|---|']
    for to, hosts, port, service, sources in port_rows(groups, wiring):
        lines.append('| %s (%s) | %s | %s | %s |' % (to, hosts, port, service.replace('|', '\\|'), sources))
    return '\n'.join(lines) + '\n'
