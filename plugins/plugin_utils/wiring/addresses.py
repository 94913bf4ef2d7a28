# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Addresses and networks as the inventory gives them (the filter
mail_address_errors; see mail_address_errors.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

try:
    import netaddr
except ImportError:  # pragma: no cover - reported when the filter is used
    netaddr = None


def parse_ip(value):
    """One IP address (IPv6 possibly in brackets); ValueError when it is none."""
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


def parse_network(value):
    """An address or a CIDR network; ValueError when it is neither."""
    text = str(value).strip()
    if '/' in text:
        addr, prefix = text.rsplit('/', 1)
        ip = parse_ip(addr)
        if not prefix.isdigit() or int(prefix) > (32 if ip.version == 4 else 128):
            raise ValueError(value)
        return netaddr.IPNetwork('%s/%s' % (ip, prefix))
    return netaddr.IPNetwork(str(parse_ip(text)))


def host_network(address):
    """One host as a network: 192.0.2.5/32, 2001:db8::5/128."""
    ip = parse_ip(address)
    return '%s/%d' % (ip, 32 if ip.version == 4 else 128)


def _items(host, name, kind, value, errors):
    if kind == 'address':
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    errors.append("%s: %s must be a list of %s, not %r" % (host, name, kind, value))
    return []


def address_errors(host, values, kinds):
    """Problems with one host's address and network options: values is
    {option: value} for the options it sets, kinds {option: 'address',
    'addresses' or 'networks'}."""
    errors = []
    for name, kind in sorted(kinds.items()):
        value = values.get(name)
        if value is None or value == '':
            continue
        for item in _items(host, name, kind, value, errors):
            try:
                (parse_network if kind == 'networks' else parse_ip)(item)
            except (ValueError, TypeError, netaddr.AddrFormatError):
                what = 'an IP address or CIDR network' if kind == 'networks' else 'an IP address'
                errors.append("%s: %s: '%s' is not %s" % (host, name, item, what))
    return errors
