# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role dovecot: the mailbox servers (store) and the sharded topology's
IMAP/POP3 proxies (proxy)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.addresses import host_network
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import (
    INTERNET, effective, listen, removed_option, role_wiring, unique)


def _networks_of(hosts, inventory, why):
    networks = []
    for other in hosts:
        networks.extend(host_network(a) for a in inventory.known(other, why) if a)
    return unique(networks)


def _mail_root(host, site, inventory):
    export = inventory.get(site.nfs_host, 'nfs_server_export').rstrip('/')
    mail_root = '%s/%s' % (export, inventory.get(site.nfs_host, 'nfs_server_mail_dir').strip('/'))
    if inventory.is_set(host.name, 'dovecot_mail_root') and not str(
            inventory.get(host.name, 'dovecot_mail_root')).startswith(export + '/'):
        inventory.errors.append('%s: dovecot_mail_root %s is outside the NFS store %s (mounted from %s): every '
                                'server of the store must keep its mail on it' % (
                                    host.name, inventory.get(host.name, 'dovecot_mail_root'), export, site.nfs_host))
    return mail_root


def _nfs_store(host, site, inventory):
    """A server of the NFS store: its mail on the store, pinned like the shards."""
    options = {'dovecot_mail_root': _mail_root(host, site, inventory), 'dovecot_shared_storage': True,
               # A cached lookup would outlive a re-pin.
               'dovecot_auth_cache_size': '0'}
    # Every address of the host, IPv4 and IPv6: the others reach it at one.
    me = inventory.known(host.name, 'the address the other servers reach %s at' % host.name)
    options.update(dovecot_lmtp_listen=me, dovecot_lmtp_proxy=True, dovecot_login_proxy_maybe=True)
    others = [other for other in site.groups['mail_store'] if other != host.name]
    options['dovecot_trusted_networks'] = _networks_of(others, inventory, 'a server that proxies to %s' % host.name)
    return options


def _sharded(host, site, inventory, proxy):
    """Every Dovecot host here routes by the mailbox host the database names:
    a cached lookup would outlive a move. Moves and session kicks go through
    the doveadm servers."""
    # Every address of the host, IPv4 and IPv6: the others reach it at one.
    me = inventory.known(host.name, 'the address the other tiers reach %s at' % host.name)
    options = {'dovecot_auth_cache_size': '0', 'dovecot_doveadm_listen': me}
    if proxy:
        # SASL for the SMTP tier's submission.
        options.update(dovecot_protocols=['imap', 'pop3'], dovecot_auth_listen=me)
    else:
        # move_user.yml's mailbox_move runs here and reads the database;
        # doveadm -A lists the users placed here (its mailbox_host name, as
        # mail_database registers it), not every shard's.
        options.update(dovecot_lmtp_listen=me, dovecot_lmtp_proxy=True, dovecot_mailbox_moves=True,
                       dovecot_mailbox_host=host.name)
        options.update(_shard_logins(host, site, inventory))
    return options


def _shard_logins(host, site, inventory):
    """A shard serves IMAP and POP3 only for the users pinned to it
    (proxy_maybe): a login a proxy looked up before a move and sent to the
    old shard is passed on to the new one. So the logins it takes come from
    the proxies and from the other shards, which pass the client's address
    on, as the proxies do."""
    others = [other for other in site.groups['mail_store'] if other != host.name]
    networks = _networks_of(site.groups['mail_proxy'], inventory, 'a proxy in front of %s' % host.name)
    networks += _networks_of(others, inventory, 'a shard that passes logins on to %s' % host.name)
    return {'dovecot_login_proxy_maybe': True, 'dovecot_proxy_networks': unique(networks)}


def dovecot_options(host, site, inventory):
    proxy = host.name in site.groups['mail_proxy']
    local_postfix = host.name in site.groups['mail_mx']
    options = {
        'dovecot_mode': 'proxy' if proxy else 'store',
        'dovecot_db_hosts': site.db_hosts_for(host.name),
        'dovecot_db_ca_file': site.db_ca_file(host.name),
        'dovecot_postfix_local': local_postfix,
        'dovecot_quota_status': local_postfix and not site.nfs,
    }
    removed_option(host.name, inventory, 'dovecot_db_host', 'dovecot_db_hosts')
    if local_postfix and not site.nfs:
        options['dovecot_quota_status_listen'] = '127.0.0.1'
    if local_postfix and not proxy:
        # Sieve's replies (vacation, redirect) leave as the site's own mail
        # does: to the local Postfix, whose milter signs mail from the
        # loopback and whose content filter sees it.
        options['dovecot_submission_host'] = '127.0.0.1:25'
    if not proxy and not site.nfs and not site.sharded:
        # Users upload their Sieve scripts to their one mail server (the
        # NFS servers' pinning and the proxies' do not carry it yet).
        options['dovecot_managesieve'] = True
    if site.nfs and not proxy:
        options.update(_nfs_store(host, site, inventory))
    if site.sharded:
        options.update(_sharded(host, site, inventory, proxy))
    return options


def dovecot_requires(host, site, inventory, options):
    required = [('dovecot_db_password', "it reads the mail database with it (site.yml copies the host's "
                 'mail_database_dovecot_password)', 'non_empty')]
    if effective(host, inventory, options, 'dovecot_doveadm_listen'):
        required.append(('dovecot_doveadm_password', "dovecot_doveadm_listen is set: the doveadm servers' shared "
                         'secret (mailbox moves, session kicks)', 'non_empty'))
    if effective(host, inventory, options, 'dovecot_mailbox_moves'):
        required.append(('mail_database_mover_password', 'dovecot_mailbox_moves is set: move_user.yml and '
                         "drain_shard.yml log in to the mail database from this shard with the moves' account",
                         'non_empty'))
    return required


# The login ports: (protocol, port, what). Behind the sharded proxies a
# shard takes logins from them and from the other shards only (a login for a
# user moved away is passed on to the new shard), on the plain ports (the
# proxy speaks STARTTLS-free IMAP and POP3 to it: dovecot-sql.conf.ext's
# port).
LOGIN_PORTS = (('imap', 143, 'IMAP (STARTTLS)'), ('imap', 993, 'IMAPS'), ('pop3', 110, 'POP3 (STARTTLS)'),
               ('pop3', 995, 'POP3S'))
PROXIED_PORTS = (('imap', 143, 'IMAP: logins passed on by the proxies (and by the other shards, for a user moved here)'),
                 ('pop3', 110, 'POP3: logins passed on by the proxies (and by the other shards, for a user moved here)'))


def _login_listens(host, site, protocols, proxy):
    if not proxy and site.sharded:
        others = [h for h in site.groups['mail_store'] if h != host.name]
        return [listen(port, 'tcp', what, site.groups['mail_proxy'] + others)
                for protocol, port, what in PROXIED_PORTS if protocol in protocols]
    clients = "the users' mail clients" + (' and the webmail' if site.groups['mail_webmail'] else '')
    return [listen(port, 'tcp', '%s: %s' % (what, clients), [INTERNET])
            for protocol, port, what in LOGIN_PORTS if protocol in protocols]


def dovecot_listens(host, site, inventory, options):
    """The logins; LMTP, SASL and doveadm over TCP when their listeners are set."""
    def value(name):
        return effective(host, inventory, options, name)
    proxy = value('dovecot_mode') == 'proxy'
    others = [h for h in site.groups['mail_store'] if h != host.name]
    listens = _login_listens(host, site, value('dovecot_protocols'), proxy)
    if value('dovecot_managesieve') and value('dovecot_sieve') and not proxy:
        clients = "the users' mail clients" + (' and the webmail' if site.groups['mail_webmail'] else '')
        listens.append(listen(value('dovecot_managesieve_port'), 'tcp', 'ManageSieve (STARTTLS): %s' % clients,
                              [INTERNET]))
    if value('dovecot_lmtp_listen'):
        listens.append(listen(value('dovecot_lmtp_port'), 'tcp', 'LMTP: mail for the users of this server (from the '
                              'SMTP tier, and from the other servers for a user pinned or moved here)',
                              site.groups['mail_smtp'] + others))
    if value('dovecot_auth_listen'):
        listens.append(listen(value('dovecot_auth_port'), 'tcp', "SASL: the SMTP tier checks its users' "
                              'submission logins', site.groups['mail_smtp']))
    if value('dovecot_doveadm_listen'):
        # mailbox_move runs on the target shard: it pulls from the source's
        # doveadm server, ends sessions on the source and on every proxy.
        listens.append(listen(value('dovecot_doveadm_port'), 'tcp', 'doveadm: mailbox moves (dsync), ending '
                              "a moved user's sessions", site.groups['mail_store'] if proxy else others))
    return listens


WIRING = role_wiring(
    'dovecot', ('mail_store', 'mail_proxy'), dovecot_options,
    copies=(('dovecot_db_password', 'mail_database_dovecot_password'),),
    address_options={'dovecot_lmtp_listen': 'addresses', 'dovecot_auth_listen': 'addresses',
                     'dovecot_doveadm_listen': 'addresses', 'dovecot_proxy_networks': 'networks',
                     'dovecot_trusted_networks': 'networks'},
    reads=('nfs_server_export', 'nfs_server_mail_dir'),
    requires=dovecot_requires, listens=dovecot_listens)
