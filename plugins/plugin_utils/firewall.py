# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role firewall's rules, from the wiring's listens (docs/design/no-spof-plan.md 2.6).

Two pure steps:

- ``firewall_rules(listens, addresses)``: the host's listens (wire()'s
  'listens': port, proto, service, role, peers) with each peer host replaced
  by every address it may connect from (the same facts the rest of the
  wiring uses: Inventory.known); the words 'internet' and 'controller' stay.
  The wiring gives it to the role as ``firewall_rules``.
- ``ruleset(rules, admin_networks, ssh_client, extra_rules)``: the nft text
  the role installs (one table ``inet mailstack``, loaded as one transaction,
  no other table touched): established and related first, the loopback,
  ICMP and ICMPv6 (neighbour discovery, path MTU), DHCPv6 replies from the
  link, then Ansible's own
  connection (SSH_CLIENT), then SSH and every other listen from its peers'
  addresses only ('controller': the administrators' networks and Ansible's
  address; 'internet': anyone), then the inventory's extra rules; any other
  TCP connection is refused at once (reset), everything else dropped.

A listen none of whose peers has an address gets no rule: the port stays
closed (and the wiring reports the peer without an address as an error).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible.errors import AnsibleFilterError

INTERNET = 'internet'
CONTROLLER = 'controller'
PROTOCOLS = ('tcp', 'udp')

HEAD = """table inet mailstack {}
delete table inet mailstack
table inet mailstack {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tct state invalid drop
\t\tiif lo accept
\t\tmeta l4proto icmp accept
\t\tmeta l4proto ipv6-icmp accept
\t\t# DHCPv6 replies to this host's client (conntrack does not match them to its multicast request)
\t\tip6 saddr fe80::/10 udp sport 547 udp dport 546 accept
"""

TAIL = """\t\t# Any other TCP connection is refused at once; anything else is dropped (policy).
\t\tmeta l4proto tcp reject with tcp reset
\t}
}
"""


def _network(value, where):
    """An IP address or network (str) as ipaddress's network; an
    IPv4-mapped IPv6 address as the IPv4 one (a dual-stack socket's IPv4
    peer arrives as IPv4)."""
    try:
        network = ipaddress.ip_network(str(value).strip().strip('[]'), strict=False)
    except ValueError:
        raise AnsibleFilterError('firewall: %s: %r is not an IP address or network' % (where, value))
    if network.version == 6 and network.prefixlen == 128 and network.network_address.ipv4_mapped:
        return ipaddress.ip_network(network.network_address.ipv4_mapped)
    return network


def firewall_rules(listens, addresses):
    """The rules of a host's listens: each listen with 'sources', every
    address of its peers (addresses(peer) -> [address]), in order, each once;
    'internet' alone when anyone may connect, 'controller' kept as a word."""
    rules = []
    for item in listens:
        peers = list(item['peers'])
        if INTERNET in peers:
            sources = [INTERNET]
        else:
            sources = []
            for peer in peers:
                for address in ([peer] if peer == CONTROLLER else addresses(peer)):
                    if address and address not in sources:
                        sources.append(address)
        rules.append({'port': int(item['port']), 'proto': item['proto'], 'service': item['service'],
                      'role': item.get('role', ''), 'peers': peers, 'sources': sources})
    return rules


def ssh_client(value):
    """(address, port) of the connection Ansible runs over, from the
    environment variable SSH_CLIENT ('<client address> <client port>
    <server port>'), or None when it is unset or names no address (a
    connection that is no SSH over the network)."""
    parts = str(value or '').split()
    if len(parts) != 3 or not parts[2].isdigit() or not 0 < int(parts[2]) < 65536:
        return None
    try:
        address = _network(parts[0], 'SSH_CLIENT')
    except AnsibleFilterError:
        return None
    return str(address.network_address), int(parts[2])


def _collapsed(networks):
    """{4: [...], 6: [...]}: the networks of each family, overlaps merged, in order."""
    by_family = {4: [], 6: []}
    for network in networks:
        by_family[network.version].append(network)
    return dict((family, list(ipaddress.collapse_addresses(items))) for family, items in by_family.items())


def _set(networks):
    texts = [str(n.network_address) if n.num_addresses == 1 else str(n) for n in networks]
    return texts[0] if len(texts) == 1 else '{ %s }' % ', '.join(texts)


def _accepts(port, proto, networks, anyone):
    """The nft lines that accept port/proto from the networks (or anyone)."""
    match = '%s dport %d accept' % (proto, port)
    if anyone:
        return [match]
    families = _collapsed(networks)
    return ['%s saddr %s %s' % ('ip' if family == 4 else 'ip6', _set(families[family]), match)
            for family in (4, 6) if families[family]]


def _comment(text):
    return ' '.join(str(text).split())


def _port(value, where):
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if isinstance(value, bool) or not 0 < port < 65536:
        raise AnsibleFilterError('firewall: %s: port %r is not a port number (1-65535)' % (where, value))
    return port


def _proto(value, where):
    if value not in PROTOCOLS:
        raise AnsibleFilterError('firewall: %s: proto %r is not tcp or udp' % (where, value))
    return value


def _sources(values, where, controller):
    """(anyone, networks) of a rule's sources; 'controller' is the controller's networks."""
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise AnsibleFilterError('firewall: %s: sources must be a list, got %r' % (where, values))
    anyone = INTERNET in values
    networks = []
    for value in values:
        if value == CONTROLLER:
            networks.extend(controller)
        elif value != INTERNET:
            networks.append(_network(value, '%s: sources' % where))
    return anyone, networks


def ruleset(rules, admin_networks=(), ssh_client_value='', extra_rules=()):
    """The nft text of the table inet mailstack (see the module's text).
    rules: firewall_rules(); admin_networks: addresses or networks the
    administrators (and Ansible) connect from; ssh_client_value: SSH_CLIENT
    of Ansible's connection ('' when none); extra_rules: the inventory's
    [{'port', 'proto' (tcp), 'sources', 'comment'}]. A wrong item fails,
    naming it and its field."""
    admin = [_network(value, 'firewall_admin_networks[%d]' % i) for i, value in enumerate(admin_networks or ())]
    connection = ssh_client(ssh_client_value)
    controller = admin + ([_network(connection[0], 'SSH_CLIENT')] if connection else [])
    lines = []
    if connection:
        lines.append("# Ansible's own connection (SSH_CLIENT %s): never locked out by this run" % connection[0])
        lines.extend(_accepts(connection[1], 'tcp', [_network(connection[0], 'SSH_CLIENT')], False))
    # SSH (the listens open to the controller) before the others; when no
    # listen names the controller (rules not from the wiring), SSH on the
    # port Ansible connected to (else 22) all the same.
    ordered = ([r for r in rules if CONTROLLER in r.get('sources', ())]
               or [{'port': connection[1] if connection else 22, 'proto': 'tcp', 'role': 'firewall',
                    'service': 'SSH: the administrators (no listen names the controller)',
                    'peers': [CONTROLLER], 'sources': [CONTROLLER]}])
    ordered += [r for r in rules if CONTROLLER not in r.get('sources', ())]
    for index, rule in enumerate(ordered):
        where = 'firewall_rules[%d] (%s)' % (index, rule.get('service', '?'))
        port, proto = _port(rule.get('port'), where), _proto(rule.get('proto'), where)
        anyone, networks = _sources(rule.get('sources', []), where, controller)
        peers = ', '.join(rule.get('peers') or ()) or 'nobody'
        text = _comment('%d/%s %s [%s] from: %s' % (port, proto, rule.get('service', ''), rule.get('role', ''),
                                                    peers))
        accepts = _accepts(port, proto, networks, anyone)
        lines.append('# %s%s' % (text, '' if accepts else ' - no address to admit: closed'))
        lines.extend(accepts)
    for index, rule in enumerate(extra_rules or ()):
        where = 'firewall_extra_rules[%d]' % index
        if not isinstance(rule, dict):
            raise AnsibleFilterError('firewall: %s: a mapping with port, proto, sources, comment, got %r'
                                     % (where, rule))
        unknown = sorted(set(rule) - set(('port', 'proto', 'sources', 'comment')))
        if unknown:
            raise AnsibleFilterError('firewall: %s: unknown field %s' % (where, ', '.join(unknown)))
        port, proto = _port(rule.get('port'), where), _proto(rule.get('proto', 'tcp'), where)
        if not rule.get('sources'):
            raise AnsibleFilterError("firewall: %s: sources is empty (name addresses or networks, or 'internet')"
                                     % where)
        anyone, networks = _sources(rule['sources'], where, controller)
        lines.append('# %d/%s %s (firewall_extra_rules)' % (port, proto, _comment(rule.get('comment', ''))))
        lines.extend(_accepts(port, proto, networks, anyone))
    return HEAD + ''.join('\t\t%s\n' % line for line in lines) + TAIL
