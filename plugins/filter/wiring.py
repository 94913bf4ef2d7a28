# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn the topology decision and the inventory into each host's role options
(see mail_wiring.yml).

Plain Python on plain data: ``wire(groups, hostvars)`` takes the inventory's
groups and a mapping of each host's variables (Ansible's ``hostvars``, or
dicts in the unit tests) and returns, for every host, the roles it runs and
the options those roles get from the topology. An option the inventory sets
for a host is never in the result: site.yml applies only what is missing, so
the inventory always wins. Values the wiring reads from other hosts (a port,
the mail root) are those hosts' effective values: the inventory's, else the
role's default read from the role's own defaults/main.yml.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.mailstack.plugins.filter.topology import (
    MTA_STS_MODES, mail_dns_zone, mail_mta_sts_policy, mail_topology)

try:
    import netaddr
except ImportError:  # pragma: no cover - reported when the filter is used
    netaddr = None

# Which inventory groups run which role, in the order site.yml applies them
# (tests/unit/test_site_wiring.py checks site.yml's plays against it).
ROLE_GROUPS = (
    ('common', ('all',)),
    # Before DNS: the DNS play publishes the keys the signing hosts made.
    ('dkim', ('mail_mx', 'mail_smtp')),
    ('dmarc', ('mail_mx', 'mail_smtp')),
    ('dns', ('mail_dns',)),
    # Before the database: it serves its remote readers over TLS.
    ('tls', ('mail_mx', 'mail_store', 'mail_webmail', 'mail_smtp', 'mail_proxy', 'mail_backup_mx', 'mail_db',
             'mail_db_replica')),
    ('mail_database', ('mail_db', 'mail_db_replica')),
    ('content_filter', ('mail_filter',)),
    # The shared store (on an iSCSI LUN in the NAS/SAN variant), exported and
    # mounted before Postfix and Dovecot use it.
    ('iscsi_target', ('mail_san',)),
    ('nfs_server', ('mail_nfs',)),
    ('nfs_client', ('mail_store',)),
    ('postfix', ('mail_mx', 'mail_backup_mx', 'mail_smtp')),
    ('dovecot', ('mail_store', 'mail_proxy')),
    ('webmail', ('mail_webmail',)),
    ('backup_mx', ('mail_backup_mx',)),
)
ROLES = tuple(name for name, _groups in ROLE_GROUPS)

# Options that take a secret from another variable of the same host. The
# wiring names the source and never reads the value: site.yml copies it
# without logging.
COPIES = (
    ('postfix', 'postfix_db_password', 'mail_database_postfix_password'),
    ('dovecot', 'dovecot_db_password', 'mail_database_dovecot_password'),
    # The CHAP secret the NFS server logs into the iSCSI target with.
    ('nfs_server', 'nfs_server_iscsi_chap_password', 'iscsi_target_chap_password'),
)

# The DMARC policies the mail domain may publish (mailstack_dmarc_policy).
DMARC_POLICIES = ('none', 'quarantine', 'reject')

# mailstack_tls_rpt_rua: where TLS reports go (RFC 8460, 3), one or more
# mailto: or https: URIs; nothing that would break the record's quoting.
TLS_RPT_RUA = re.compile(r'^(mailto:[^@\s",;!]+@[A-Za-z0-9.-]+|https://[^\s",;!]+)'
                         r'(,(mailto:[^@\s",;!]+@[A-Za-z0-9.-]+|https://[^\s",;!]+))*$')

# The clients of a database served over TLS verify it against the host's
# trust store (the tls role adds the lab CA or the CA the inventory gives).
SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'

# Where a host with tls_source=acme that runs the web server answers HTTP-01
# challenges: the tls role's ACME client writes there, nginx serves it on
# port 80 (webmail_acme_webroot). Hosts without it answer with the client's
# own listener.
ACME_WEBROOT = '/var/www/acme'

# mailstack_mta_sts_mode: a policy mode, or 'off' to publish none.
MTA_STS_CHOICES = ('off',) + MTA_STS_MODES

# Settings of the whole site: hosts that disagree would build parts that do
# not fit (a policy id published for another policy than the one served, a
# certificate signed by another CA than the one every host trusts).
SITE_OPTIONS = ('mailstack_dmarc_policy', 'mailstack_mta_sts_mode', 'mailstack_mta_sts_max_age',
                'mailstack_tls_rpt_rua', 'tls_ca_host', 'tls_ca_dir')

# Set by site.yml to the names it applied, so that a second wiring in the same
# run (site.yml imported twice) does not mistake them for the inventory's.
WIRED_KEYS = 'mailstack__wired_keys'

# Inventory options that hold addresses or networks, checked before any host
# changes: name -> 'address' (one IP address), 'addresses' (a list of them) or
# 'networks' (a list of addresses or CIDR networks).
ADDRESS_OPTIONS = {
    'mailstack_address': 'address',
    'common_resolv_nameservers': 'addresses',
    'content_filter_clients': 'networks',
    'postfix_mynetworks': 'networks',
    'postfix_reinject_clients': 'networks',
    'dmarc_ignore_hosts': 'networks',
    'dovecot_lmtp_listen': 'addresses',
    'dovecot_auth_listen': 'addresses',
    'dovecot_doveadm_listen': 'addresses',
    'dovecot_proxy_networks': 'networks',
    'dovecot_trusted_networks': 'networks',
    'nfs_server_clients': 'networks',
    'nfs_server_iscsi_portal': 'address',
    'iscsi_target_initiators': 'networks',
}

_ROLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'roles')
_DEFAULTS = {}


def role_default(name):
    """The default of a role option, read from its role's defaults/main.yml."""
    role = max((r for r in ROLES if name.startswith(r + '_')), key=len, default=None)
    if role is None:
        raise AnsibleFilterError('mail_wiring: %s is not an option of any role' % name)
    if role not in _DEFAULTS:
        with open(os.path.join(_ROLES_DIR, role, 'defaults', 'main.yml')) as f:
            _DEFAULTS[role] = yaml.safe_load(f) or {}
    if name not in _DEFAULTS[role]:
        raise AnsibleFilterError('mail_wiring: role %s has no option %s' % (role, name))
    return _DEFAULTS[role][name]


def _ip(value):
    if netaddr is None:
        raise AnsibleFilterError('mail_wiring needs the Python library netaddr on the controller')
    text = str(value).strip()
    if text.startswith('[') and text.endswith(']'):
        text = text[1:-1]
    # netaddr also reads '10' or '10.1' as IPv4; only a full dotted quad or an
    # IPv6 address is an address here.
    if ':' not in text and text.count('.') != 3:
        raise ValueError(value)
    return netaddr.IPAddress(text)


def _network(value):
    text = str(value).strip()
    if '/' in text:
        addr, prefix = text.rsplit('/', 1)
        ip = _ip(addr)
        if not prefix.isdigit() or int(prefix) > (32 if ip.version == 4 else 128):
            raise ValueError(value)
        return netaddr.IPNetwork('%s/%s' % (ip, prefix))
    return netaddr.IPNetwork(str(_ip(text)))


def host_network(address):
    """One host as a network: 192.0.2.5/32, 2001:db8::5/128."""
    ip = _ip(address)
    return '%s/%d' % (ip, 32 if ip.version == 4 else 128)


class _Inventory(object):
    """What the wiring reads from the inventory, with the inventory's own
    settings told apart from the values the wiring would compute."""

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
        hv = self.vars(host)
        if name not in hv:
            return False
        wired = hv[WIRED_KEYS] if WIRED_KEYS in hv else ()
        return name not in (wired or ())

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
        if host in self._addresses:
            return self._addresses[host]
        explicit = self.optional(host, 'mailstack_address')
        if explicit:
            try:
                reach = str(_ip(explicit))
            except (ValueError, netaddr.AddrFormatError):
                reach = None
            known = [reach] if reach else []
        else:
            facts = self.optional(host, 'ansible_facts') or {}
            known = []
            for key in ('default_ipv4', 'default_ipv6'):
                address = (facts.get(key) or {}).get('address')
                if address:
                    known.append(str(_ip(address)))
            reach = known[0] if known else None
        self._addresses[host] = (reach, known)
        return reach, known

    def reach(self, host, why):
        address = self.addresses(host)[0]
        if address is None:
            self.errors.append('%s: no address to reach it at (%s): set mailstack_address, or let site.yml '
                               'gather its facts' % (host, why))
            return ''
        return address

    def known(self, host, why):
        """Every address the host may connect from (an error when none)."""
        return self.addresses(host)[1] or [self.reach(host, why)]


def address_errors(host, values):
    """Problems with one host's address and network options: values is
    {option: value} for the options of ADDRESS_OPTIONS the host sets."""
    errors = []
    for name, kind in sorted(ADDRESS_OPTIONS.items()):
        value = values.get(name)
        if value is None or value == '':
            continue
        if kind == 'address':
            items = [value]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            errors.append("%s: %s must be a list of %s, not %r" % (host, name, kind, value))
            continue
        for item in items:
            try:
                (_network if kind == 'networks' else _ip)(item)
            except (ValueError, TypeError, netaddr.AddrFormatError):
                what = 'an IP address or CIDR network' if kind == 'networks' else 'an IP address'
                errors.append("%s: %s: '%s' is not %s" % (host, name, item, what))
    return errors


def _fqdn(inv, host):
    domain = inv.optional(host, 'mailstack_domain')
    return '%s.%s' % (host, domain) if domain else None


def _mta_sts(host, g, topology, inv, domain):
    """The domain's MTA-STS policy, or None when none is published."""
    mode = inv.optional(host, 'mailstack_mta_sts_mode', 'testing')
    if mode not in MTA_STS_CHOICES:
        inv.errors.append("%s: mailstack_mta_sts_mode must be one of %s, not %r"
                          % (host, ', '.join(MTA_STS_CHOICES), mode))
        return None
    if mode == 'off':
        return None
    if not g['mail_webmail']:
        # The policy is served by the webmail hosts' web server. Only a
        # demand to enforce is an error: 'testing' is the default (and what
        # an AWX survey sends when left alone).
        if mode == 'enforce':
            inv.errors.append("%s: mailstack_mta_sts_mode is %r but the inventory has no 'mail_webmail' host to "
                              "serve the policy at https://mta-sts.%s/ (set it to 'off', or add one)"
                              % (host, mode, domain))
        return None
    max_age = inv.optional(host, 'mailstack_mta_sts_max_age', 604800)
    if isinstance(max_age, str) and max_age.isdigit():
        max_age = int(max_age)  # as a survey or -e gives it
    try:
        return mail_mta_sts_policy({'topology': topology, 'groups': g}, domain, mode, max_age)
    except AnsibleFilterError as e:
        inv.errors.append('%s: mailstack_mta_sts_max_age: %s' % (host, e))
        return None


def _wire_host(host, g, topology, inv):
    """The options of the roles this host runs, as the topology computes them."""
    roles = [name for name, groups in ROLE_GROUPS
             if 'all' in groups or any(host in g.get(group, ()) for group in groups)]
    o = {}
    fqdn = _fqdn(inv, host)
    db_hosts = list(g['mail_db']) + list(g['mail_db_replica'])
    primary_db = g['mail_db'][0] if g['mail_db'] else None
    filter_host = g['mail_filter'][0] if g['mail_filter'] else None
    filtering_mx = [h for h in g['mail_mx'] if h not in g['mail_backup_mx']] + list(g['mail_smtp'])
    sharded = topology == 'sharded'
    # Several servers on one NFS store, each user pinned to one of them by
    # the same mailbox_host table as the shards.
    nfs = topology == 'nfs_shared'
    nfs_host = g['mail_nfs'][0] if nfs and g['mail_nfs'] else None
    san_host = g['mail_san'][0] if nfs and g['mail_san'] else None
    domain = inv.optional(host, 'mailstack_domain')

    # The primary serves TLS, and requires it of every remote account, when
    # another host reads it or replicates it.
    primary_remote = primary_db is not None and (
        bool(g['mail_db_replica'])
        or any(h not in db_hosts for group in ('mail_mx', 'mail_smtp', 'mail_store', 'mail_proxy') for h in g[group]))
    if primary_db is not None and inv.is_set(primary_db, 'mail_database_tls'):
        primary_tls = bool(inv.get(primary_db, 'mail_database_tls'))
    else:
        primary_tls = primary_remote

    def db_ca_file(h):
        # Verify the primary's certificate when h reads it over the network.
        return SYSTEM_CA_BUNDLE if primary_tls and db_host_seen_from(h) != 'localhost' else ''

    def is_acme(h):
        return inv.optional(h, 'tls_source') == 'acme'

    def cert_name(h):
        # The first name in h's certificate: its inventory name, or with ACME
        # its name in the mail domain.
        return (_fqdn(inv, h) or h) if is_acme(h) else h

    def db_host_seen_from(h):
        # A database host (primary or replica: a backup MX reads its own
        # replica) uses the local socket; others reach the primary.
        if h in db_hosts or primary_db is None:
            return 'localhost'
        return inv.reach(primary_db, 'the mail database primary, read by %s' % h)

    if 'dkim' in roles and domain:
        o['dkim_domains'] = [domain]

    # Published by the DNS hosts, served by the webmail hosts.
    mta_sts = None
    if domain and ('dns' in roles or 'webmail' in roles):
        mta_sts = _mta_sts(host, g, topology, inv, domain)

    # OpenDKIM and OpenDMARC write, and OpenDMARC trusts, Authentication-Results
    # headers under the host's mail name.
    authserv = {}
    for role in ('dkim', 'dmarc'):
        if role in roles:
            name = role + '_authserv_id'
            if fqdn:
                o[name] = fqdn
            authserv[role] = inv.get(host, name) if inv.is_set(host, name) else o.get(name, role_default(name))
    if len(set(str(v) for v in authserv.values())) > 1:
        inv.errors.append("%s: dkim_authserv_id (%s) and dmarc_authserv_id (%s) differ: OpenDMARC trusts only "
                          "OpenDKIM's results under its own authserv-id"
                          % (host, authserv['dkim'], authserv['dmarc']))

    if 'dmarc' in roles:
        # A backup MX relays mail it accepted from the internet: judged there
        # by its sender's SPF it would fail here.
        relays = []
        for backup in g['mail_backup_mx']:
            relays.extend(inv.known(backup, 'a backup MX that relays to %s' % host))
        o['dmarc_ignore_hosts'] = list(role_default('dmarc_ignore_hosts')) + _unique(relays)

    if 'dns' in roles:
        if domain:
            decision = {'topology': topology, 'groups': g}
            addresses = {}
            for other in sorted(set(h for hosts in g.values() for h in hosts)):
                address = inv.reach(other, 'its records in the zone of %s' % domain)
                if address:
                    addresses[other] = address
            policy = inv.optional(host, 'mailstack_dmarc_policy', 'quarantine')
            if policy not in DMARC_POLICIES:
                inv.errors.append("%s: mailstack_dmarc_policy must be one of %s, not %r"
                                  % (host, ', '.join(DMARC_POLICIES), policy))
                policy = 'quarantine'
            rua = inv.optional(host, 'mailstack_tls_rpt_rua') or 'mailto:postmaster@%s' % domain
            if rua == 'none':
                rua = None
            elif not TLS_RPT_RUA.match(str(rua)):
                inv.errors.append("%s: mailstack_tls_rpt_rua must be 'none' or mailto: and https: URIs separated "
                                  "by commas, not %r" % (host, rua))
                rua = None
            o['dns_zones'] = [mail_dns_zone(decision, domain, addresses, policy, mta_sts, rua)]

    if 'mail_database' in roles:
        replica = host in g['mail_db_replica']
        o['mail_database_mode'] = 'replica' if replica else 'primary'
        o['mail_database_server_id'] = db_hosts.index(host) + 1
        o['mail_database_binlog'] = bool(g['mail_db_replica'])
        if replica and primary_db:
            o['mail_database_primary'] = inv.reach(primary_db, 'the primary that %s replicates' % host)
        # Who reads this server over the network: the replicas (from the
        # primary), and Postfix and Dovecot on hosts that are no database
        # host (from the primary; a replica serves only its own host).
        readers = {'postfix': [], 'dovecot': []}
        if not replica:
            for service, groups in (('postfix', ('mail_mx', 'mail_smtp')),
                                    ('dovecot', ('mail_store', 'mail_proxy'))):
                for other in sorted(set(h for group in groups for h in g[group])):
                    if other not in db_hosts:
                        readers[service].extend(inv.known(other, 'a reader of the database'))
        remote = primary_remote and not replica
        local = ['localhost', '127.0.0.1']
        o['mail_database_bind_address'] = '*' if remote else '127.0.0.1'
        o['mail_database_tls'] = remote
        if replica and primary_db:
            o['mail_database_primary_ca_file'] = SYSTEM_CA_BUNDLE if primary_tls else ''
        o['mail_database_postfix_hosts'] = local + _unique(readers['postfix'])
        o['mail_database_dovecot_hosts'] = local + _unique(readers['dovecot'])
        if (sharded or nfs) and not replica:
            # Each shard (each server of the NFS store) registered with the address the tiers reach it at;
            # mailbox_move runs on a shard and writes the move's state.
            o['mail_database_mailbox_hosts'] = [
                {'name': s, 'address': inv.reach(s, 'the mailbox server the tiers deliver to')}
                for s in g['mail_store']]
            admins = list(local)
            for other in g['mail_store']:
                if other not in db_hosts:
                    admins.extend(inv.known(other, 'a mailbox server that moves mailboxes'))
            o['mail_database_admin_hosts'] = _unique(admins)
        if not replica and g['mail_db_replica']:
            repl = []
            for other in g['mail_db_replica']:
                repl.extend(inv.known(other, 'a replica of the database'))
            o['mail_database_replication_hosts'] = _unique(repl)

    if 'tls' in roles:
        # The service names clients use for a tier (round robin) are in the
        # certificate of each host behind them. An ACME certificate carries
        # only names the CA can check in the DNS: not the inventory's short
        # name, nor an address.
        acme = is_acme(host)
        if acme and not fqdn:
            inv.errors.append('%s: tls_source=acme needs mailstack_domain: the certificate names %s.<domain>'
                              % (host, host))
        if acme and host in db_hosts and primary_remote:
            inv.errors.append('%s: tls_source=acme on a database host whose database is read or replicated over the '
                              'network: its readers connect by address, which an ACME certificate does not name; '
                              'give it lab_ca or provided' % host)
        names = ([] if acme else [host]) + ([fqdn] if fqdn else [])
        if fqdn and host in g['mail_smtp']:
            names.append('smtp.%s' % domain)
        if fqdn and host in g['mail_proxy']:
            names.extend(['imap.%s' % domain, 'pop3.%s' % domain])
        if fqdn and nfs and host in g['mail_mx']:
            # The round-robin name of the servers, for mail and for clients.
            names.append('mail.%s' % domain)
        if host in g['mail_webmail'] and mta_sts:
            names.append('mta-sts.%s' % domain)
        if host == primary_db and primary_remote:
            # The address its readers and replicas connect to, which they
            # verify against the certificate.
            names.append(inv.reach(host, 'the mail database primary, read over TLS'))
        names = _unique(names)
        if acme:
            # HTTP-01 asks the name's address: a name shared by several
            # hosts (round robin) reaches one of them, not always the one
            # asking.
            for name, group in (('smtp.%s' % domain, 'mail_smtp'), ('imap.%s' % domain, 'mail_proxy'),
                                ('mta-sts.%s' % domain, 'mail_webmail'), ('mail.%s' % domain, 'mail_mx')):
                if name in names and len(g[group]) > 1:
                    inv.errors.append('%s: tls_source=acme cannot certify %s, which %s share: the ACME server checks '
                                      'the name at one of their addresses; give that tier provided certificates'
                                      % (host, name, ', '.join(g[group])))
        if len(names) > 1 or acme:
            o['tls_names'] = names
        if acme and host in g['mail_webmail']:
            o['tls_acme_webroot'] = inv.optional(host, 'webmail_acme_webroot') or ACME_WEBROOT
        # The lab CA stays on one managed host, the same in every run.
        o['tls_ca_host'] = next(h for group in dict(ROLE_GROUPS)['tls'] for h in g.get(group, ()))

    if 'content_filter' in roles:
        clients = []
        for mx in filtering_mx:
            clients.extend(['127.0.0.1'] if mx == host
                           else inv.known(mx, 'a mail server that hands mail to the filter'))
        o['content_filter_clients'] = _unique(clients)
        # '*': back to the address the message came from, so that every mail
        # server gets its own mail back.
        o['content_filter_reinject_host'] = '*'
        ports = sorted(set(inv.get_int(mx, 'postfix_reinject_port') for mx in filtering_mx))
        if len(ports) > 1:
            inv.errors.append('%s: the mail servers %s listen for filtered mail on different ports (%s): the '
                              'filter sends it back to one port, so set one postfix_reinject_port for all'
                              % (host, ', '.join(filtering_mx), ', '.join(str(p) for p in ports)))
        elif ports:
            o['content_filter_reinject_port'] = ports[0]
        if fqdn:
            o['content_filter_hostname'] = fqdn

    if 'postfix' in roles:
        backup = host in g['mail_backup_mx']
        # The NFS topology's servers route like the sharded SMTP tier: each
        # recipient to the LMTP of the server the user is pinned to.
        o['postfix_mode'] = 'backup_relay' if backup else (
            'router' if host in g['mail_smtp'] or nfs else 'mailbox')
        if fqdn:
            o['postfix_myhostname'] = fqdn
        o['postfix_db_host'] = db_host_seen_from(host)
        o['postfix_db_ca_file'] = db_ca_file(host)
        if backup:
            primary = g['mail_mx'][0] if g['mail_mx'] else None
            if primary:
                o['postfix_relay_to'] = '[%s]:25' % inv.reach(primary, 'the primary that %s relays to' % host)
        else:
            if host in g['mail_smtp'] or nfs:
                ports = sorted(set(inv.get_int(s, 'dovecot_lmtp_port') for s in g['mail_store']))
                if len(ports) > 1:
                    inv.errors.append('%s: the mailbox servers %s take LMTP on different ports (%s): set one '
                                      'dovecot_lmtp_port for all' % (host, ', '.join(g['mail_store']),
                                                                     ', '.join(str(p) for p in ports)))
                elif ports:
                    o['postfix_shard_lmtp_port'] = ports[0]
                if g['mail_proxy']:
                    # SASL for submission: the proxies' Dovecot knows every user.
                    proxy = g['mail_proxy'][0]
                    address = inv.reach(proxy, 'the SASL service of %s' % host)
                    wrapped = '[%s]' % address if ':' in address else address
                    o['postfix_sasl_path'] = 'inet:%s:%d' % (wrapped, inv.get_int(proxy, 'dovecot_auth_port'))
            # OpenDKIM first: OpenDMARC reads its verdict.
            milters = []
            for role in ('dkim', 'dmarc'):
                if role in roles:
                    milters.append('inet:127.0.0.1:%d' % inv.get_int(host, role + '_port'))
            o['postfix_milters'] = milters
            # Not on NFS: Dovecot's NFS page says not to use quota-status (it
            # would read the user's quota on whichever server took the mail,
            # a second server touching the user); LMTP refuses instead.
            o['postfix_quota_policy'] = (
                'inet:127.0.0.1:%s' % inv.get_int(host, 'dovecot_quota_status_port')
                if host in g['mail_store'] and not nfs else '')
            o['postfix_content_filter'] = filter_host is not None
            if filter_host is not None:
                if filter_host == host:
                    o['postfix_content_filter_host'] = '127.0.0.1'
                    o['postfix_reinject_clients'] = ['127.0.0.1/32']
                else:
                    o['postfix_content_filter_host'] = inv.reach(filter_host, 'the content filter of %s' % host)
                    known = inv.known(filter_host, 'the content filter of %s' % host)
                    o['postfix_reinject_clients'] = [host_network(a) for a in known if a]
                o['postfix_content_filter_port'] = inv.get_int(filter_host, 'content_filter_port')
                children = inv.get_int(filter_host, 'content_filter_children')
                if children <= 0:
                    # The content_filter role's default: two children per core.
                    facts = inv.optional(filter_host, 'ansible_facts') or {}
                    children = 2 * int(facts.get('processor_vcpus') or facts.get('processor_cores') or 1)
                o['postfix_content_filter_concurrency'] = children

    if 'dovecot' in roles:
        proxy = host in g['mail_proxy']
        o['dovecot_mode'] = 'proxy' if proxy else 'store'
        o['dovecot_db_host'] = db_host_seen_from(host)
        o['dovecot_db_ca_file'] = db_ca_file(host)
        local_postfix = host in g['mail_mx']
        o['dovecot_postfix_local'] = local_postfix
        o['dovecot_quota_status'] = local_postfix and not nfs
        if local_postfix and not nfs:
            o['dovecot_quota_status_listen'] = '127.0.0.1'
        if nfs and not proxy:
            export = inv.get(nfs_host, 'nfs_server_export').rstrip('/')
            mail_root = '%s/%s' % (export, inv.get(nfs_host, 'nfs_server_mail_dir').strip('/'))
            o['dovecot_mail_root'] = mail_root
            if inv.is_set(host, 'dovecot_mail_root') and not str(
                    inv.get(host, 'dovecot_mail_root')).startswith(export + '/'):
                inv.errors.append('%s: dovecot_mail_root %s is outside the NFS store %s (mounted from %s): every '
                                  'server of the store must keep its mail on it' % (
                                      host, inv.get(host, 'dovecot_mail_root'), export, nfs_host))
            o['dovecot_shared_storage'] = True
            # Pinned like the shards: a cached lookup would outlive a re-pin.
            o['dovecot_auth_cache_size'] = '0'
            me = inv.reach(host, 'the address the other servers reach %s at' % host)
            o['dovecot_lmtp_listen'] = [me]
            o['dovecot_lmtp_proxy'] = True
            o['dovecot_login_proxy_maybe'] = True
            networks = []
            for other in g['mail_store']:
                if other != host:
                    networks.extend(host_network(a) for a in inv.known(other, 'a server that proxies to %s' % host)
                                    if a)
            o['dovecot_trusted_networks'] = _unique(networks)
        if sharded:
            # Every Dovecot host here routes by the mailbox host the database
            # names: a cached lookup would outlive a move.
            o['dovecot_auth_cache_size'] = '0'
            me = inv.reach(host, 'the address the other tiers reach %s at' % host)
            # Moves and session kicks go through the doveadm servers.
            o['dovecot_doveadm_listen'] = [me]
            if proxy:
                o['dovecot_protocols'] = ['imap', 'pop3']
                # SASL for the SMTP tier's submission.
                o['dovecot_auth_listen'] = [me]
            else:
                o['dovecot_lmtp_listen'] = [me]
                o['dovecot_lmtp_proxy'] = True
                networks = []
                for other in g['mail_proxy']:
                    networks.extend(host_network(a) for a in inv.known(other, 'a proxy in front of %s' % host) if a)
                o['dovecot_proxy_networks'] = _unique(networks)

    if 'nfs_server' in roles and nfs:
        clients = []
        for store in g['mail_store']:
            clients.extend(inv.known(store, 'a mail server that mounts the store of %s' % host))
        o['nfs_server_clients'] = _unique(clients)
        # The Maildirs' owner has one id on every host: NFS carries numbers.
        for option, source in (('nfs_server_vmail_uid', 'dovecot_vmail_uid'),
                               ('nfs_server_vmail_user', 'dovecot_vmail_user')):
            seen = dict((s, inv.get(s, source)) for s in g['mail_store'])
            if len(set(str(v) for v in seen.values())) > 1:
                inv.errors.append('%s: the mail servers disagree on %s (%s): the files of the shared store carry '
                                  'one owner, set it once' % (host, source, ', '.join(
                                      '%s: %s' % (s, v) for s, v in sorted(seen.items()))))
            elif seen:
                o[option] = list(seen.values())[0]

    if 'nfs_server' in roles and san_host:
        # The store is the target's LUN, logged into, formatted once, mounted
        # at the export.
        o['nfs_server_store'] = 'iscsi'
        o['nfs_server_iscsi_portal'] = inv.reach(san_host, 'the iSCSI target behind %s' % host)
        o['nfs_server_iscsi_target'] = inv.get(san_host, 'iscsi_target_iqn')
        o['nfs_server_iscsi_chap_user'] = inv.get(san_host, 'iscsi_target_chap_user')

    if 'iscsi_target' in roles and nfs_host:
        # Only the NFS server may log in.
        o['iscsi_target_initiators'] = _unique(inv.known(nfs_host, 'the NFS server that logs into %s' % host))

    if 'nfs_client' in roles and nfs:
        export = inv.get(nfs_host, 'nfs_server_export')
        address = inv.reach(nfs_host, 'the NFS server of %s' % host)
        o['nfs_client_mounts'] = [{'src': '%s:%s' % ('[%s]' % address if ':' in address else address, export),
                                   'path': export}]
        # Started only once the store is mounted, stopped with it.
        o['nfs_client_required_by'] = ['dovecot.service'] + (
            ['postfix@-.service'] if host in g['mail_mx'] else [])

    if 'webmail' in roles:
        # By the first name in their certificates; in the sharded topology
        # the proxy and SMTP tiers, never a shard.
        imap_hosts = g['mail_proxy'] if sharded else g['mail_store']
        if imap_hosts:
            o['webmail_imap_host'] = cert_name(imap_hosts[0])
        if filtering_mx:
            o['webmail_smtp_host'] = cert_name(filtering_mx[0])
        if mta_sts:
            o['webmail_mta_sts_server_name'] = 'mta-sts.%s' % domain
            o['webmail_mta_sts_policy'] = mta_sts['text']

    if 'backup_mx' in roles and g['mail_mx']:
        primary = g['mail_mx'][0]
        o['backup_mx_primary'] = primary
        o['backup_mx_primary_address'] = inv.reach(primary, 'the primary whose mailboxes %s mirrors' % host)
        o['backup_mx_address'] = inv.reach(host, 'the address the mirror connects from')
        o['backup_mx_mail_root'] = inv.get(primary, 'dovecot_mail_root')

    return roles, o


def _unique(items):
    seen = []
    for item in items:
        if item and item not in seen:
            seen.append(item)
    return seen


def wire(groups, hostvars):
    """{'topology', 'errors', 'hosts': {host: {'roles', 'options', 'copies'}}}."""
    decision = mail_topology(groups)
    g = decision['groups']
    inv = _Inventory(hostvars)
    hosts = [h for h in (groups.get('all') or []) if h != 'localhost']
    for name in sorted(set(h for members in g.values() for h in members)):
        if name not in hosts:
            hosts.append(name)
    for host in hosts:
        # mailstack_address is read from every host; the other address
        # options are checked by each host itself (mail_address_errors).
        if 'mailstack_address' in inv.vars(host):
            inv.errors.extend(address_errors(host, {'mailstack_address': inv.optional(host, 'mailstack_address')}))
    result = {'topology': decision['topology'], 'errors': list(decision['errors']), 'hosts': {},
              'address_options': sorted(ADDRESS_OPTIONS)}
    mail_hosts = sorted(set(h for members in g.values() for h in members))
    for name in SITE_OPTIONS:
        seen = dict((h, inv.optional(h, name) if inv.is_set(h, name) else None) for h in mail_hosts)
        if len(set(repr(v) for v in seen.values())) > 1:
            result['errors'].append('%s differs between hosts (%s): it is one setting of the whole site, set it '
                                    'once (group_vars/all)' % (name, ', '.join(
                                        '%s: %s' % (h, 'unset' if v is None else repr(v))
                                        for h, v in sorted(seen.items()))))
    if result['errors']:
        return result
    for host in hosts:
        roles, options = _wire_host(host, g, decision['topology'], inv)
        result['hosts'][host] = {
            'roles': roles,
            'options': dict((k, v) for k, v in options.items() if not inv.is_set(host, k)),
            'copies': dict((option, source) for role, option, source in COPIES
                           if role in roles and not inv.is_set(host, option)
                           and source in inv.vars(host)),
        }
    result['errors'].extend(_unique(inv.errors))
    return result


def mail_address_errors(values, host):
    if not isinstance(values, dict):
        raise AnsibleFilterError('mail_address_errors expects a mapping of options, got %s' % type(values).__name__)
    return address_errors(host, values)


def mail_wiring(groups, hostvars):
    if not isinstance(groups, dict):
        raise AnsibleFilterError('mail_wiring expects the groups mapping, got %s' % type(groups).__name__)
    return wire(groups, hostvars)


class FilterModule(object):
    def filters(self):
        return {'mail_wiring': mail_wiring, 'mail_address_errors': mail_address_errors}
