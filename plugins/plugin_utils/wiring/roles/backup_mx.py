# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role backup_mx: the primary's mailboxes mirrored on the backup MX."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import role_wiring


def backup_mx_options(host, site, inventory):
    if not site.groups['mail_mx']:
        return {}
    primary = site.groups['mail_mx'][0]
    return {
        'backup_mx_primary': primary,
        'backup_mx_primary_address': inventory.reach(primary, 'the primary whose mailboxes %s mirrors' % host.name),
        'backup_mx_address': inventory.reach(host.name, 'the address the mirror connects from'),
        'backup_mx_mail_root': inventory.get(primary, 'dovecot_mail_root'),
    }


WIRING = role_wiring('backup_mx', ('mail_backup_mx',), backup_mx_options, reads=('dovecot_mail_root',))
