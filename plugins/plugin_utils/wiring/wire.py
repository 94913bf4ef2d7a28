# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn the topology decision and the inventory into each host's role options
(the filter mail_wiring; see mail_wiring.yml).

Plain Python on plain data: ``wire(groups, hostvars)`` takes the inventory's
groups and a mapping of each host's variables (Ansible's ``hostvars``, or
dicts in the unit tests) and returns, for every host, the roles it runs and
the options those roles get from the topology. An option the inventory sets
for a host is never in the result: site.yml applies only what is missing, so
the inventory always wins. Values the wiring reads from other hosts (a port,
the mail root) are those hosts' effective values: the inventory's, else the
role's default read from the role's own defaults/main.yml.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.mailstack.plugins.plugin_utils.topology import decide_topology
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.addresses import address_errors
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.inventory import Inventory
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.registry import (
    ADDRESS_OPTIONS, ROLE_WIRINGS, runs)
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import PEER_WORDS, RULES, unique
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.site import Site, host_facts

# Settings of the whole site: hosts that disagree would build parts that do
# not fit (a policy id published for another policy than the one served, a
# certificate signed by another CA than the one every host trusts).
SITE_OPTIONS = ('mailstack_domains', 'mailstack_dmarc_policy', 'mailstack_mta_sts_mode', 'mailstack_mta_sts_max_age',
                'mailstack_tls_rpt_rua', 'tls_ca_host', 'tls_ca_dir')


def _wire(name, site):
    """(roles, options): the roles the host runs, in play order, and their
    options as the topology computes them."""
    wirings = [wiring for wiring in ROLE_WIRINGS if runs(wiring, name, site.groups)]
    roles = [wiring.name for wiring in wirings]
    host = host_facts(name, roles, site, any(wiring.publishes_mta_sts for wiring in wirings))
    options = {}
    if host.domain:
        # The primary domain, for what reads mailstack_domain (the pre-flight,
        # playbooks) when the inventory gives mailstack_domains.
        options['mailstack_domain'] = host.domain
    for wiring in wirings:
        options.update(wiring.options(host, site, site.inventory))
    listens = _listens(host, wirings, site, options)
    for wiring in wirings:
        options.update(wiring.from_listens(host, site, site.inventory, options, listens))
    required = []
    for wiring in wirings:
        for option, why, rule in wiring.requires(host, site, site.inventory, options):
            if rule not in RULES:
                raise AnsibleFilterError('mail_wiring: role %s requires %s by an unknown rule %r'
                                         % (wiring.name, option, rule))
            if option not in [r['option'] for r in required]:
                required.append({'option': option, 'why': why, 'rule': rule})
    return roles, options, required, listens


def _listens(host, wirings, site, options):
    """The ports the host's roles open to other hosts, each with its peers
    (inventory hosts, or 'internet', 'controller'); one nobody needs is left out."""
    found = []
    for wiring in wirings:
        for item in wiring.listens(host, site, site.inventory, options):
            strangers = [p for p in item.peers if p not in PEER_WORDS and p not in site.mail_hosts]
            if item.proto not in ('tcp', 'udp') or strangers:
                raise AnsibleFilterError('mail_wiring: role %s opens %s/%s to %s' % (
                    wiring.name, item.port, item.proto, ', '.join(strangers) or 'an unknown protocol'))
            if item.peers:
                found.append({'port': item.port, 'proto': item.proto, 'service': item.service,
                              'role': wiring.name, 'peers': list(item.peers)})
    return found


def wire_host(name, groups, topology, inventory):
    """(roles, options) of one host (groups: the topology decision's)."""
    return _wire(name, Site(groups, topology, inventory))[:2]


def _hosts(groups, mail_groups):
    """Every host of the inventory but localhost, and every mail host."""
    hosts = [h for h in (groups.get('all') or []) if h != 'localhost']
    for name in sorted(set(h for members in mail_groups.values() for h in members)):
        if name not in hosts:
            hosts.append(name)
    return hosts


def _site_option_errors(inventory, mail_hosts):
    errors = []
    for name in SITE_OPTIONS:
        seen = dict((h, inventory.optional(h, name) if inventory.is_set(h, name) else None) for h in mail_hosts)
        if len(set(repr(v) for v in seen.values())) > 1:
            errors.append('%s differs between hosts (%s): it is one setting of the whole site, set it '
                          'once (group_vars/all)' % (name, ', '.join(
                              '%s: %s' % (h, 'unset' if v is None else repr(v)) for h, v in sorted(seen.items()))))
    return errors


def _host_result(name, site, inventory):
    roles, options, required, listens = _wire(name, site)
    return {
        'roles': roles,
        # The ports its roles open, and who must reach each (issue 30's
        # firewall, the operator's port table: plugin_utils/ports.py).
        'listens': listens,
        # What the roles need set (a secret, a source), named, never read.
        'required': required,
        'options': dict((k, v) for k, v in options.items() if not inventory.is_set(name, k)),
        'copies': dict((option, source) for wiring in ROLE_WIRINGS if wiring.name in roles
                       for option, source in wiring.copies
                       if not inventory.is_set(name, option) and source in inventory.vars(name)),
    }


def wire(groups, hostvars):
    """{'topology', 'errors', 'hosts': {host: {'roles', 'listens', 'required', 'options', 'copies'}},
    'address_options'}."""
    decision = decide_topology(groups)
    inventory = Inventory(hostvars)
    hosts = _hosts(groups, decision['groups'])
    for host in hosts:
        # mailstack_address is read from every host; the other address
        # options are checked by each host itself (mail_address_errors).
        if 'mailstack_address' in inventory.vars(host):
            inventory.errors.extend(address_errors(
                host, {'mailstack_address': inventory.optional(host, 'mailstack_address')},
                {'mailstack_address': ADDRESS_OPTIONS['mailstack_address']}))
    result = {'topology': decision['topology'], 'errors': list(decision['errors']), 'hosts': {},
              'address_options': sorted(ADDRESS_OPTIONS)}
    mail_hosts = sorted(set(h for members in decision['groups'].values() for h in members))
    result['errors'].extend(_site_option_errors(inventory, mail_hosts))
    if result['errors']:
        return result
    site = Site(decision['groups'], decision['topology'], inventory)
    for host in hosts:
        result['hosts'][host] = _host_result(host, site, inventory)
    result['errors'].extend(unique(inventory.errors))
    return result
