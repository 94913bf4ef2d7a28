# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role firewall's rules on the example inventories (inventories/examples),
wired as a run would wire them with the firewall on: for
tests/unit/test_firewall.py (golden texts, peers) and
tests/integration/test_firewall_nft.py (nft checks and loads them)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.wire import wire

from .scripts import load_script

TOPOLOGIES = ('single', 'backup_mx', 'nfs_shared', 'sharded')
# What the examples would set (group_vars/all) to turn the firewall on.
ADMIN_NETWORKS = ['203.0.113.0/24', '2001:db8:ad::/48']
ON = {'firewall_enabled': True, 'firewall_admin_networks': ADMIN_NETWORKS}
# Ansible's login, as printenv SSH_CLIENT gives it (address, its port, the server's port).
SSH_CLIENT = '203.0.113.7 50022 22'


class _HostVars(object):
    """One host's variables with some set over them (as -e would)."""

    def __init__(self, base, extra):
        self.base, self.extra = base, extra

    def __contains__(self, name):
        return name in self.extra or name in self.base

    def __getitem__(self, name):
        return self.extra[name] if name in self.extra else self.base[name]


class _AllHostVars(object):
    def __init__(self, hostvars, extra):
        self.hostvars, self.extra = hostvars, extra

    def __getitem__(self, host):
        return _HostVars(self.hostvars[host], self.extra)


def wired(topology, extra=None, groups_update=None):
    """(groups, hostvars, wiring) of an example, with the variables of
    extra (default: the firewall on) set on every host, and its groups
    updated with groups_update (another database, say)."""
    groups, hostvars = load_script('port_tables').load(topology)
    groups.update(groups_update or {})
    overlaid = _AllHostVars(hostvars, ON if extra is None else extra)
    return groups, overlaid, wire(groups, overlaid)


def mail_hosts(groups, wiring):
    """The hosts that run the firewall, in the inventory's order."""
    return [h for h in groups['all'] if h in wiring['hosts'] and 'firewall' in wiring['hosts'][h]['roles']]
