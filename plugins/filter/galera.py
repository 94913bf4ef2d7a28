# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who starts a Galera cluster, and how (see galera_bootstrap.yml):
module_utils/galera.py's decide and recovery on every node's facts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.mailops.mailstack.plugins.module_utils import galera


def galera_bootstrap(nodes, recovery=False):
    """decide(nodes), or recovery(nodes) for the recovery playbook."""
    if isinstance(nodes, dict):
        nodes = [dict(facts, name=name) for name, facts in nodes.items()]
    if isinstance(nodes, (list, tuple)):
        # galera_node's results of a loop over the nodes' names (delegated).
        nodes = [dict(n['node'], name=n['item']) if isinstance(n, dict) and 'node' in n and 'item' in n else n
                 for n in nodes]
    if not isinstance(nodes, (list, tuple)) or not all(isinstance(n, dict) and n.get('name') for n in nodes):
        raise AnsibleFilterError('galera_bootstrap: a list of node facts (galera_node\'s node, each with its '
                                 'name), got %s' % to_native(type(nodes).__name__))
    return galera.recovery(list(nodes)) if recovery else galera.decide(list(nodes))


class FilterModule(object):
    def filters(self):
        return {'galera_bootstrap': galera_bootstrap}
