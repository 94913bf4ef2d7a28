# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role common: the base of every host. The topology gives it no option."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import role_wiring

WIRING = role_wiring('common', ('all',), address_options={'common_resolv_nameservers': 'addresses'})
