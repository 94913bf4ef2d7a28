# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a role's wiring file declares (one file per role in wiring/roles/,
collected in play order by wiring/registry.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import namedtuple

# name: the role. groups: the inventory groups whose hosts run it ('all':
# every host). options: function (host, site, inventory) -> {option: value},
# host a HostFacts, site a Site, inventory an Inventory (wiring/site.py,
# wiring/inventory.py). copies: (option, variable of the same host it takes
# a secret from, unread and unlogged). address_options: {option: 'address',
# 'addresses' or 'networks'}, checked before any host changes. reads: the
# options of other roles (and hosts) it reads. publishes_mta_sts: it needs
# the domain's MTA-STS policy (HostFacts.mta_sts).
RoleWiring = namedtuple('RoleWiring', 'name groups options copies address_options reads publishes_mta_sts')


def no_options(host, site, inventory):
    """The options of a role the topology does not change."""
    return {}


def role_wiring(name, groups, options=no_options, copies=(), address_options=None, reads=(), publishes_mta_sts=False):
    return RoleWiring(name, tuple(groups), options, tuple(copies), dict(address_options or {}), tuple(reads),
                      publishes_mta_sts)


def unique(items):
    """The items in order, each once, without empty ones."""
    seen = []
    for item in items:
        if item and item not in seen:
            seen.append(item)
    return seen
