# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every role site.yml runs, in the order of its plays, each with its wiring
(wiring/roles/<role>.py). The one table of which groups run which role:
playbooks/wire.yml groups the hosts by it (mailstack_role_<role>) and
site.yml's plays target those groups (tests/unit/test_site_wiring.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.roles import (
    backup_mx, common, content_filter, dkim, dmarc, dns, dovecot, firewall, iscsi_target, mail_database,
    nfs_client, nfs_server, postfix, tls, webmail)

ROLE_WIRINGS = tuple(module.WIRING for module in (
    common,
    # Before DNS: the DNS play publishes the keys the signing hosts made.
    dkim,
    dmarc,
    dns,
    # Before the database: it serves its remote readers over TLS.
    tls,
    mail_database,
    content_filter,
    # The shared store (on an iSCSI LUN in the NAS/SAN variant), exported and
    # mounted before Postfix and Dovecot use it.
    iscsi_target,
    nfs_server,
    nfs_client,
    postfix,
    dovecot,
    webmail,
    backup_mx,
    # Last: the firewall opens the ports of every role above, once they
    # serve (plugin_utils/firewall.py; off unless firewall_enabled).
    firewall,
))

ROLES = tuple(wiring.name for wiring in ROLE_WIRINGS)
ROLE_GROUPS = tuple((wiring.name, wiring.groups) for wiring in ROLE_WIRINGS)

# (role, option, variable of the same host it takes a secret from).
COPIES = tuple((wiring.name, option, source) for wiring in ROLE_WIRINGS for option, source in wiring.copies)

# Inventory options that hold addresses or networks, checked before any host
# changes: name -> 'address' (one IP address), 'addresses' (a list of them) or
# 'networks' (a list of addresses or CIDR networks).
ADDRESS_OPTIONS = dict([('mailstack_address', 'address')]
                       + [item for wiring in ROLE_WIRINGS for item in wiring.address_options.items()])

_ROLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'roles')
_DEFAULTS = {}


def role_default(name):
    """The default of a role option, read from its role's defaults/main.yml."""
    role = max((r for r in ROLES if name.startswith(r + '_')), key=len, default=None)
    if role is None:
        raise AnsibleFilterError('mail_wiring: %s is not an option of any role' % name)
    if role not in _DEFAULTS:
        with open(os.path.join(_ROLES_DIR, role, 'defaults', 'main.yml')) as f:
            _DEFAULTS[role] = yaml.safe_load(f) or {}
    if name not in _DEFAULTS[role]:
        raise AnsibleFilterError('mail_wiring: role %s has no option %s' % (role, name))
    return _DEFAULTS[role][name]


def runs(wiring, host, groups):
    """Whether the host runs the role (groups: the topology's, by name)."""
    return 'all' in wiring.groups or any(host in groups.get(group, ()) for group in wiring.groups)
