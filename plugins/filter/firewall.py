# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filter mail_firewall_ruleset (see mail_firewall_ruleset.yml): a thin
entry over plugins/plugin_utils/firewall.py's ruleset."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.mailstack.plugins.plugin_utils.firewall import ruleset


def mail_firewall_ruleset(rules, admin_networks=None, ssh_client='', extra_rules=None):
    if not isinstance(rules, (list, tuple)):
        raise AnsibleFilterError('mail_firewall_ruleset expects the list firewall_rules, got %s' % type(rules).__name__)
    return ruleset(list(rules), list(admin_networks or ()), ssh_client or '', list(extra_rules or ()))


class FilterModule(object):
    def filters(self):
        return {'mail_firewall_ruleset': mail_firewall_ruleset}
