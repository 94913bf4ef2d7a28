# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a role's wiring file declares (one file per role in wiring/roles/,
collected in play order by wiring/registry.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from collections import namedtuple

# name: the role. groups: the inventory groups whose hosts run it ('all':
# every host). options: function (host, site, inventory) -> {option: value},
# host a HostFacts, site a Site, inventory an Inventory (wiring/site.py,
# wiring/inventory.py). copies: (option, variable of the same host it takes
# a secret from, unread and unlogged). address_options: {option: 'address',
# 'addresses' or 'networks'}, checked before any host changes. reads: the
# options of other roles (and hosts) it reads. publishes_mta_sts: it needs
# the domain's MTA-STS policy (HostFacts.mta_sts). requires: function (host,
# site, inventory, options) -> [(option, why, rule)], options the host's
# wired options: what the role needs set on the host, checked by
# playbooks/wire.yml before any host changes (a rule of RULES). The wiring
# names the option, never reads its value (a secret is copied unread).
# listens: function (host, site, inventory, options) -> [Listen]: the ports
# the role opens on the host to other hosts, each with who must reach it
# (plugin_utils/ports.py makes the operator's port table of them; a service
# on the loopback only is not listed). from_listens: function (host, site,
# inventory, options, listens) -> {option: value}, called once every role of
# the host declared its listens (wire()'s 'listens' of the host): options made
# of them (the firewall's rules); they may not change any role's listens.
RoleWiring = namedtuple('RoleWiring', 'name groups options copies address_options reads publishes_mta_sts requires '
                                      'listens from_listens')

# One port a role opens on a host: port (int), proto ('tcp' or 'udp'),
# service (what it is, for whom), peers: who must reach it, a tuple of
# inventory hosts in the inventory's order, or of the words in PEER_WORDS.
Listen = namedtuple('Listen', 'port proto service peers')

# Peers that are no inventory host: any address (the internet: mail, clients,
# ACME servers), and the machine Ansible runs on.
INTERNET = 'internet'
CONTROLLER = 'controller'
PEER_WORDS = (INTERNET, CONTROLLER)

# The rules of a required option, by name: wire.yml's "Check the options each
# role requires" tests each with rule_holds (the filter mail_rule_holds).
RULES = ('non_empty', 'length 24', 'chap', 'pem certificate', 'pem private key')

# A CHAP secret (tgt's incominguser, open-iscsi's node.session.auth).
CHAP = re.compile(r'^[A-Za-z0-9._~+=@%^,:/-]{12,64}$')


def rule_holds(rule, value):
    """Whether a value meets a rule (the Python twin of wire.yml's check)."""
    value = '' if value is None else value
    if not hasattr(value, '__len__'):
        value = str(value)
    if rule == 'non_empty':
        return len(value) > 0
    if rule == 'length 24':
        return len(value) == 24
    if rule == 'chap':
        return isinstance(value, str) and CHAP.match(value) is not None
    if rule == 'pem certificate':
        return isinstance(value, str) and '-----BEGIN CERTIFICATE-----' in value
    if rule == 'pem private key':
        return isinstance(value, str) and re.search(r'-----BEGIN [A-Z ]*PRIVATE KEY-----', value) is not None
    raise ValueError('unknown rule %r' % rule)


def no_options(host, site, inventory):
    """The options of a role the topology does not change."""
    return {}


def no_requirements(host, site, inventory, options):
    """A role that needs nothing its defaults do not give."""
    return []


def no_listens(host, site, inventory, options):
    """A role that opens no port to other hosts."""
    return []


def listen(port, proto, service, peers):
    """A Listen; peers (hosts, or words of PEER_WORDS) each once, in order."""
    return Listen(int(port), proto, service, tuple(unique(peers)))


def nothing_from_listens(host, site, inventory, options, listens):
    """A role whose options do not depend on the ports the host opens."""
    return {}


def role_wiring(name, groups, options=no_options, copies=(), address_options=None, reads=(), publishes_mta_sts=False,
                requires=no_requirements, listens=no_listens, from_listens=nothing_from_listens):
    return RoleWiring(name, tuple(groups), options, tuple(copies), dict(address_options or {}), tuple(reads),
                      publishes_mta_sts, requires, listens, from_listens)


def effective(host, inventory, options, name):
    """A (non-secret) option's value on the host as its role will see it:
    the inventory's, else the wiring's, else the role's default."""
    if inventory.is_set(host.name, name):
        return inventory.get(host.name, name)
    return options[name] if name in options else inventory.default(name)


def unique(items):
    """The items in order, each once, without empty ones."""
    seen = []
    for item in items:
        if item and item not in seen:
            seen.append(item)
    return seen


def removed_option(host, inventory, old, new):
    """An option a release removed, still set in the inventory: refused,
    naming its successor (its value would be silently ignored)."""
    if inventory.is_set(host, old):
        inventory.errors.append('%s: %s was removed (see the changelog): set %s, a list of the database servers in '
                                'the order to try them, or leave it to the wiring' % (host, old, new))
