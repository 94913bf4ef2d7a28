# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role firewall: nftables on every mail host, opening each port the host's
roles declare (their listens) to those roles' peers only
(plugin_utils/firewall.py). Off unless firewall_enabled; then the rules are
wired (firewall_rules) and the administrators' networks are required."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.firewall import firewall_rules
from ansible_collections.mailops.mailstack.plugins.plugin_utils.topology import MAIL_GROUPS
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import effective, role_wiring


def _enabled(host, inventory, options):
    return bool(effective(host, inventory, options, 'firewall_enabled'))


def firewall_from_listens(host, site, inventory, options, listens):
    """firewall_rules: every listen of the host with its peers' addresses
    (an error names a peer without one). Nothing while the firewall is off:
    its hosts' addresses are then not needed."""
    if not _enabled(host, inventory, options):
        return {}

    def addresses(peer):
        return inventory.known(peer, 'it connects to %s, whose firewall admits it by address' % host.name)

    return {'firewall_rules': firewall_rules(listens, addresses)}


def firewall_requires(host, site, inventory, options):
    if not _enabled(host, inventory, options):
        return []
    return [('firewall_admin_networks', 'firewall_enabled is set: SSH is open to these networks (and to the '
             'address a run connects from) only; without them the next run from elsewhere is locked out',
             'non_empty')]


# Every mail host (not the lab's 'internet', lab_outside), after every other
# role: the last play, once every service it opens is there.
WIRING = role_wiring('firewall', MAIL_GROUPS, address_options={'firewall_admin_networks': 'networks'},
                     requires=firewall_requires, from_listens=firewall_from_listens)
