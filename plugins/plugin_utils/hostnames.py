# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's names from its inventory name and the mail domain: an inventory
may name a host short (smtp1) or by its name in the domain (smtp1.example.org);
both give the FQDN smtp1.example.org and the short name smtp1."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def in_domain(host, domain):
    """Whether the inventory name is already a name under the domain."""
    return bool(domain) and host.lower().endswith('.' + domain.lower().rstrip('.'))


def host_fqdn(host, domain):
    """The host's name in the mail domain (None without a domain)."""
    if not domain:
        return None
    return host if in_domain(host, domain) else '%s.%s' % (host, domain.rstrip('.'))


def host_label(host, domain):
    """The host's name relative to the domain's zone (smtp1, or eu.smtp1 for
    smtp1.eu.example.org)."""
    fqdn = host_fqdn(host, domain)
    return fqdn[:-len(domain.rstrip('.')) - 1] if fqdn else host


def host_name_error(host, domain):
    """Why an inventory name cannot name a host of the domain, or None: a
    dotted name (an FQDN of another domain, an address) would become
    <name>.<domain>."""
    if not domain or '.' not in host or in_domain(host, domain):
        return None
    return ('%s: the inventory name has dots but is not a name under the mail domain %s (mailstack_domain), so its '
            'mail name would be %s.%s: name the host %s or %s.%s and reach it with ansible_host'
            % (host, domain, host, domain, host.split('.')[0], host.split('.')[0], domain))
