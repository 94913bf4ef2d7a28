# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the wiring reads from the inventory, with the inventory's own
settings told apart from the values the wiring would compute."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.addresses import parse_ip
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.registry import role_default

try:
    import netaddr
except ImportError:  # pragma: no cover - reported when the filter is used
    netaddr = None

# Set by site.yml to the names it applied, so that a second wiring in the same
# run (site.yml imported twice) does not mistake them for the inventory's.
WIRED_KEYS = 'mailstack__wired_keys'


class Inventory(object):
    """The hosts' variables (Ansible's hostvars, or dicts in the unit tests)
    and the problems found reading them (errors, each naming the host)."""

    def __init__(self, hostvars):
        self.hostvars = hostvars
        self.errors = []
        self._addresses = {}

    def vars(self, host):
        try:
            return self.hostvars[host]
        except KeyError:
            return {}

    def is_set(self, host, name):
        """Whether the inventory sets the option (not a previous wiring)."""
        host_vars = self.vars(host)
        if name not in host_vars:
            return False
        wired = host_vars[WIRED_KEYS] if WIRED_KEYS in host_vars else ()
        return name not in (wired or ())

    @staticmethod
    def default(name):
        """The role's default of an option (its defaults/main.yml)."""
        return role_default(name)

    def get(self, host, name):
        """The host's effective value of a role option."""
        if self.is_set(host, name):
            return self._read(host, name)
        return role_default(name)

    def get_int(self, host, name):
        """The effective value of an integer option; a wrong one is an error
        naming the host and the option (and the role's default stands in)."""
        value = self.get(host, name)
        try:
            return int(value)
        except (TypeError, ValueError):
            self.errors.append("%s: %s: %r is not an integer" % (host, name, value))
            return int(role_default(name))

    def optional(self, host, name, default=None):
        return self._read(host, name) if name in self.vars(host) else default

    def _read(self, host, name):
        try:
            return self.vars(host)[name]
        except Exception as e:  # a template of the inventory that cannot be resolved here
            raise AnsibleFilterError('mail_wiring: %s of host %s cannot be read from the other hosts: %s'
                                     % (name, host, e))

    def addresses(self, host):
        """(reach, known): the address other hosts reach this host at, and
        every address it may connect from. mailstack_address when the
        inventory sets it (then it is the only one), else the IPv4 and IPv6
        addresses of the default routes in the host's facts."""
        if host not in self._addresses:
            explicit = self.optional(host, 'mailstack_address')
            known = self._explicit_address(explicit) if explicit else self._fact_addresses(host)
            self._addresses[host] = (known[0] if known else None, known)
        return self._addresses[host]

    @staticmethod
    def _explicit_address(value):
        try:
            return [str(parse_ip(value))]
        except (ValueError, netaddr.AddrFormatError):
            return []

    def _fact_addresses(self, host):
        facts = self.optional(host, 'ansible_facts') or {}
        known = []
        for key in ('default_ipv4', 'default_ipv6'):
            address = (facts.get(key) or {}).get('address')
            if address:
                known.append(str(parse_ip(address)))
        return known

    def reach(self, host, why):
        """The address other hosts reach the host at (an error when none)."""
        address = self.addresses(host)[0]
        if address is None:
            self.errors.append('%s: no address to reach it at (%s): set mailstack_address, or let site.yml '
                               'gather its facts' % (host, why))
            return ''
        return address

    def known(self, host, why):
        """Every address the host may connect from (an error when none)."""
        return self.addresses(host)[1] or [self.reach(host, why)]
