# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role common: the base of every host. The topology gives it no option."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import CONTROLLER, listen, role_wiring


def common_listens(host, site, inventory, options):
    """SSH, for Ansible; on a backup MX's primary, for the mirror too (on
    the port the backup_mx role's backup_mx_ssh_port says)."""
    listens = [listen(inventory.optional(host.name, 'ansible_port') or 22, 'tcp',
                      'SSH: Ansible and the administrators', [CONTROLLER])]
    if site.groups['mail_mx'][:1] == [host.name]:
        for backup in site.groups['mail_backup_mx']:
            listens.append(listen(inventory.get_int(backup, 'backup_mx_ssh_port'), 'tcp',
                                  'SSH: the backup MX mirrors the mailboxes (rsync)', [backup]))
    return listens


WIRING = role_wiring('common', ('all',), address_options={'common_resolv_nameservers': 'addresses'},
                     listens=common_listens)
