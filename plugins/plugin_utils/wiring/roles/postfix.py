# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role postfix: the mail servers (mailbox), the backup MX (backup_relay) and
the sharded topology's SMTP tier (router, as on the nfs_shared servers)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.addresses import host_network
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import (
    INTERNET, effective, listen, removed_option, role_wiring)


def _mode(host, site):
    """The NFS topology's servers route like the sharded SMTP tier: each
    recipient to the LMTP of the server the user is pinned to."""
    if host.name in site.groups['mail_backup_mx']:
        return 'backup_relay'
    return 'router' if host.name in site.groups['mail_smtp'] or site.nfs else 'mailbox'


def _backup_relay(host, site, inventory):
    primary = site.groups['mail_mx'][0] if site.groups['mail_mx'] else None
    if not primary:
        return {}
    return {'postfix_relay_to': '[%s]:25' % inventory.reach(primary, 'the primary that %s relays to' % host.name)}


def _router(host, site, inventory):
    options = {}
    stores = site.groups['mail_store']
    ports = sorted(set(inventory.get_int(s, 'dovecot_lmtp_port') for s in stores))
    if len(ports) > 1:
        inventory.errors.append('%s: the mailbox servers %s take LMTP on different ports (%s): set one '
                                'dovecot_lmtp_port for all' % (host.name, ', '.join(stores),
                                                               ', '.join(str(p) for p in ports)))
    elif ports:
        options['postfix_shard_lmtp_port'] = ports[0]
    if site.groups['mail_proxy']:
        # SASL for submission: the proxies' Dovecot knows every user.
        proxy = site.groups['mail_proxy'][0]
        address = inventory.reach(proxy, 'the SASL service of %s' % host.name)
        wrapped = '[%s]' % address if ':' in address else address
        options['postfix_sasl_path'] = 'inet:%s:%d' % (wrapped, inventory.get_int(proxy, 'dovecot_auth_port'))
    return options


def _policies(host, site, inventory):
    # OpenDKIM first: OpenDMARC reads its verdict.
    milters = ['inet:127.0.0.1:%d' % inventory.get_int(host.name, role + '_port')
               for role in ('dkim', 'dmarc') if role in host.roles]
    # Not on NFS: Dovecot's NFS page says not to use quota-status (it would
    # read the user's quota on whichever server took the mail, a second
    # server touching the user); LMTP refuses instead.
    quota = ('inet:127.0.0.1:%s' % inventory.get_int(host.name, 'dovecot_quota_status_port')
             if host.name in site.groups['mail_store'] and not site.nfs else '')
    return {'postfix_milters': milters, 'postfix_quota_policy': quota}


def _content_filter(host, site, inventory):
    filter_host = site.filter_host
    options = {'postfix_content_filter': filter_host is not None}
    if filter_host is None:
        return options
    if filter_host == host.name:
        options.update(postfix_content_filter_host='127.0.0.1', postfix_reinject_clients=['127.0.0.1/32'])
    else:
        why = 'the content filter of %s' % host.name
        options['postfix_content_filter_host'] = inventory.reach(filter_host, why)
        options['postfix_reinject_clients'] = [host_network(a) for a in inventory.known(filter_host, why) if a]
    options['postfix_content_filter_port'] = inventory.get_int(filter_host, 'content_filter_port')
    children = inventory.get_int(filter_host, 'content_filter_children')
    if children <= 0:
        # The content_filter role's default: two children per core.
        facts = inventory.optional(filter_host, 'ansible_facts') or {}
        children = 2 * int(facts.get('processor_vcpus') or facts.get('processor_cores') or 1)
    options['postfix_content_filter_concurrency'] = children
    return options


def postfix_options(host, site, inventory):
    options = {'postfix_mode': _mode(host, site)}
    if host.fqdn:
        options['postfix_myhostname'] = host.fqdn
    options['postfix_db_hosts'] = site.db_hosts_for(host.name)
    options['postfix_db_ca_file'] = site.db_ca_file(host.name)
    removed_option(host.name, inventory, 'postfix_db_host', 'postfix_db_hosts')
    if options['postfix_mode'] == 'backup_relay':
        options.update(_backup_relay(host, site, inventory))
        return options
    if options['postfix_mode'] == 'router':
        options.update(_router(host, site, inventory))
    options.update(_policies(host, site, inventory))
    options.update(_content_filter(host, site, inventory))
    return options


def postfix_requires(host, site, inventory, options):
    return [('postfix_db_password', "it reads the mail database with it (site.yml copies the host's "
             'mail_database_postfix_password)', 'non_empty')]


def postfix_listens(host, site, inventory, options):
    """SMTP from the internet; submission on the servers the users send
    through; the reinjection port to the filter host when it is another."""
    def value(name):
        return effective(host, inventory, options, name)
    if value('postfix_mode') == 'backup_relay':
        return [listen(25, 'tcp', 'SMTP: mail for the domain while the primary is down (backup MX)', [INTERNET])]
    listens = [listen(25, 'tcp', 'SMTP: mail from the internet (MX)', [INTERNET])]
    if value('postfix_submission'):
        clients = "the users' mail clients" + (' and the webmail' if site.groups['mail_webmail'] else '')
        listens.extend([listen(587, 'tcp', 'submission (STARTTLS): %s' % clients, [INTERNET]),
                        listen(465, 'tcp', "submissions (implicit TLS): the users' mail clients", [INTERNET])])
    if value('postfix_content_filter') and site.filter_host not in (None, host.name):
        listens.append(listen(value('postfix_reinject_port'), 'tcp', 'Postfix: filtered mail back from amavisd-new',
                              [site.filter_host]))
    return listens


WIRING = role_wiring(
    'postfix', ('mail_mx', 'mail_backup_mx', 'mail_smtp'), postfix_options,
    copies=(('postfix_db_password', 'mail_database_postfix_password'),),
    address_options={'postfix_mynetworks': 'networks', 'postfix_reinject_clients': 'networks'},
    reads=('dovecot_lmtp_port', 'dovecot_auth_port', 'dkim_port', 'dmarc_port', 'dovecot_quota_status_port',
           'content_filter_port', 'content_filter_children'),
    requires=postfix_requires, listens=postfix_listens)
