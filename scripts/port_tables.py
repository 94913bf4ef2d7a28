#!/usr/bin/env python
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the port tables of the example inventories into the docs, between
their markers, from the wiring's listens (plugins/plugin_utils/ports.py).

    scripts/port_tables.py           rewrite the tables in docs/guide.md and docs/ports.md
    scripts/port_tables.py --check   exit 1 when a table differs from the wiring's
    scripts/port_tables.py -i DIR    print the table of your own inventory (its hosts
                                     need mailstack_address: no host is contacted)

A table sits between the lines

    <!-- port-table:TOPOLOGY -->
    <!-- /port-table:TOPOLOGY -->

and is made from inventories/examples/TOPOLOGY (loaded as ansible-playbook
loads it, with the examples' vault password). Run it from a checkout whose
collection is on ANSIBLE_COLLECTIONS_PATH (README.md, docs/design/layout.md).
"""

import argparse
import os
import re
import sys

from ansible.errors import AnsibleError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultSecret
from ansible.vars.hostvars import HostVars
from ansible.vars.manager import VariableManager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _collections_root():
    """Where ansible_collections/mailops/mailstack is this checkout: the tree
    it sits in, or scripts/setup.sh's .cache/collections."""
    parts = ROOT.split(os.sep)
    if len(parts) >= 3 and parts[-3] == 'ansible_collections':
        return os.sep.join(parts[:-3])
    return os.path.join(ROOT, '.cache', 'collections')


if _collections_root() not in sys.path:
    sys.path.insert(0, _collections_root())

from ansible_collections.mailops.mailstack.plugins.plugin_utils.ports import port_table  # noqa: E402
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.wire import wire  # noqa: E402

EXAMPLES = os.path.join(ROOT, 'inventories', 'examples')
DOCS = ('docs/guide.md', 'docs/ports.md')
MARKED = re.compile(r'(<!-- port-table:(\w+) -->\n)(.*?)(<!-- /port-table:\2 -->)', re.S)


def load(topology, source=None):
    """(groups, hostvars) of an example inventory (with the examples' vault
    password), or of the inventory at source (its secrets stay encrypted:
    the wiring never reads them)."""
    loader = DataLoader()
    if source is None:
        with open(os.path.join(EXAMPLES, 'vault-password.txt'), 'rb') as f:
            loader.set_vault_secrets([('default', VaultSecret(f.read().strip()))])
    inventory = InventoryManager(loader=loader, sources=[source or os.path.join(EXAMPLES, topology)])
    variables = VariableManager(loader=loader, inventory=inventory)
    return inventory.get_groups_dict(), HostVars(inventory=inventory, variable_manager=variables, loader=loader)


def table(topology, source=None):
    """The port table (Markdown) of an example, or of the inventory at source."""
    groups, hostvars = load(topology, source)
    wiring = wire(groups, hostvars)
    if wiring['errors']:
        raise ValueError('%s does not wire: %s' % (source or topology, '; '.join(wiring['errors'])))
    return port_table(groups, wiring)


def render(text):
    """The text with every marked table made again."""
    return MARKED.sub(lambda m: m.group(1) + table(m.group(2)) + m.group(4), text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--check', action='store_true', help='exit 1 when a table is not current')
    parser.add_argument('-i', '--inventory', help='print the table of this inventory instead')
    args = parser.parse_args()
    if args.inventory:
        try:
            sys.stdout.write(table(None, os.path.expanduser(args.inventory)))
        except (ValueError, AnsibleError) as e:
            sys.exit('port_tables: %s' % e)
        return
    stale = []
    for path in DOCS:
        with open(os.path.join(ROOT, path)) as f:
            current = f.read()
        text = render(current)
        if text == current:
            continue
        stale.append(path)
        if not args.check:
            with open(os.path.join(ROOT, path), 'w') as f:
                f.write(text)
            print('wrote %s' % path)
    if args.check and stale:
        sys.exit('%s: a port table is not current: run scripts/port_tables.py' % ', '.join(stale))


if __name__ == '__main__':
    main()
