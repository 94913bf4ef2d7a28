# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role nfs_server: the NFS server of the nfs_shared topology's mail store
(on the iSCSI target's LUN when there is a mail_san host)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import effective, listen, role_wiring, unique

# The Maildirs' owner has one id on every host: NFS carries numbers.
OWNER = (('nfs_server_vmail_uid', 'dovecot_vmail_uid'), ('nfs_server_vmail_user', 'dovecot_vmail_user'))


def _store_owner(host, site, inventory):
    options = {}
    for option, source in OWNER:
        seen = dict((s, inventory.get(s, source)) for s in site.groups['mail_store'])
        if len(set(str(v) for v in seen.values())) > 1:
            inventory.errors.append('%s: the mail servers disagree on %s (%s): the files of the shared store carry '
                                    'one owner, set it once' % (host.name, source, ', '.join(
                                        '%s: %s' % (s, v) for s, v in sorted(seen.items()))))
        elif seen:
            options[option] = list(seen.values())[0]
    return options


def _iscsi_store(host, site, inventory):
    """The store is the target's LUN, logged into, formatted once, mounted at the export."""
    return {
        'nfs_server_store': 'iscsi',
        'nfs_server_iscsi_portal': inventory.reach(site.san_host, 'the iSCSI target behind %s' % host.name),
        'nfs_server_iscsi_target': inventory.get(site.san_host, 'iscsi_target_iqn'),
        'nfs_server_iscsi_chap_user': inventory.get(site.san_host, 'iscsi_target_chap_user'),
    }


def nfs_server_options(host, site, inventory):
    if not site.nfs:
        return {}
    clients = []
    for store in site.groups['mail_store']:
        clients.extend(inventory.known(store, 'a mail server that mounts the store of %s' % host.name))
    options = {'nfs_server_clients': unique(clients)}
    options.update(_store_owner(host, site, inventory))
    if site.san_host:
        options.update(_iscsi_store(host, site, inventory))
    return options


def nfs_server_requires(host, site, inventory, options):
    if effective(host, inventory, options, 'nfs_server_store') != 'iscsi':
        return []
    return [('nfs_server_iscsi_chap_password', 'it logs in to the iSCSI target with it (site.yml copies the '
             "host's iscsi_target_chap_password; CHAP: 12 to 64 letters, digits and ._~+=@%^,:/-)", 'chap')]


def nfs_server_listens(host, site, inventory, options):
    # NFS 4.2 over TCP (nfs_client_options): one port, no rpcbind or mountd.
    if not site.nfs:
        return []
    return [listen(2049, 'tcp', 'NFS 4.2: the mail store, mounted by the mail servers', site.groups['mail_store'])]


WIRING = role_wiring(
    'nfs_server', ('mail_nfs',), nfs_server_options,
    # The CHAP secret the NFS server logs into the iSCSI target with.
    copies=(('nfs_server_iscsi_chap_password', 'iscsi_target_chap_password'),),
    address_options={'nfs_server_clients': 'networks', 'nfs_server_iscsi_portal': 'address'},
    reads=('dovecot_vmail_uid', 'dovecot_vmail_user', 'iscsi_target_iqn', 'iscsi_target_chap_user'),
    requires=nfs_server_requires, listens=nfs_server_listens)
