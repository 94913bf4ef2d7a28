# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role dkim: OpenDKIM on the mail servers and the SMTP tier. Its keys are
published by the DNS play (playbooks/site.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import role_wiring


def dkim_options(host, site, inventory):
    options = {}
    if host.domain:
        options['dkim_domains'] = [host.domain]
    # OpenDKIM writes Authentication-Results headers under the host's mail name.
    if host.fqdn:
        options['dkim_authserv_id'] = host.fqdn
    return options


def dkim_requires(host, site, inventory, options):
    return [('mailstack_domain', 'OpenDKIM signs the mail of the mail domain: without it, it signs nothing',
             'non_empty')]


WIRING = role_wiring('dkim', ('mail_mx', 'mail_smtp'), dkim_options, requires=dkim_requires)
