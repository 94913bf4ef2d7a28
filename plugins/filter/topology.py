# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filters mail_topology, mail_dns_zone and mail_mta_sts_policy (see their
.yml files): thin entries over plugins/plugin_utils/topology.py, dns_zone.py
and mta_sts.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.dns_zone import dns_zone
from ansible_collections.mailops.mailstack.plugins.plugin_utils.mta_sts import mta_sts_policy
from ansible_collections.mailops.mailstack.plugins.plugin_utils.topology import decide_topology


def mail_topology(groups):
    return decide_topology(groups)


def mail_dns_zone(decision, domain, addresses, dmarc_policy='quarantine', mta_sts=None, tls_rpt_rua=None,
                  host_domain=None, kind='local'):
    return dns_zone(decision, domain, addresses, dmarc_policy, mta_sts, tls_rpt_rua, host_domain, kind)


def mail_mta_sts_policy(decision, domain, mode='testing', max_age=604800, mx_domain=None):
    return mta_sts_policy(decision, domain, mode, max_age, mx_domain)


class FilterModule(object):
    def filters(self):
        return {'mail_topology': mail_topology, 'mail_dns_zone': mail_dns_zone,
                'mail_mta_sts_policy': mail_mta_sts_policy}
