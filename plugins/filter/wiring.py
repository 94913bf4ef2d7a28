# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filters mail_wiring, mail_address_errors and mail_rule_holds (see their .yml files):
thin entries over plugins/plugin_utils/wiring/ (wire.py; each role's wiring
in wiring/roles/<role>.py, collected in play order by wiring/registry.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.addresses import address_errors
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.registry import ADDRESS_OPTIONS, ROLES
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import RULES, rule_holds
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.wire import wire

# ROLES: the roles site.yml runs, in its order (tests/unit/test_role_specs.py reads it here).
__all__ = ['ROLES', 'mail_address_errors', 'mail_rule_holds', 'mail_wiring', 'FilterModule']


def mail_address_errors(values, host):
    if not isinstance(values, dict):
        raise AnsibleFilterError('mail_address_errors expects a mapping of options, got %s' % type(values).__name__)
    return address_errors(host, values, ADDRESS_OPTIONS)


def mail_rule_holds(value, rule):
    if rule not in RULES:
        raise AnsibleFilterError('mail_rule_holds: unknown rule %r (rules: %s)' % (rule, ', '.join(RULES)))
    return rule_holds(rule, value)


def mail_wiring(groups, hostvars):
    if not isinstance(groups, dict):
        raise AnsibleFilterError('mail_wiring expects the groups mapping, got %s' % type(groups).__name__)
    return wire(groups, hostvars)


class FilterModule(object):
    def filters(self):
        return {'mail_wiring': mail_wiring, 'mail_address_errors': mail_address_errors, 'mail_rule_holds': mail_rule_holds}
