# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
name: module_utils_files
short_description: The files of this collection's module utilities that a program on a host needs
version_added: 0.1.0
description:
  - Returns the paths, on the controller, of the named module utilities of mailops.mailstack and of every
    module utility of the collection they import, at any depth - the files Ansible would put beside a
    module that imports them. A role copies them to a host to run them there without Ansible.
  - The files are found through the collection loader, the way Ansible finds module utilities for a
    module - from an installed collection or from a checkout on C(ANSIBLE_COLLECTIONS_PATH) alike.
  - Followed are relative imports (C(from .name import ...)) and imports of
    C(ansible_collections.mailops.mailstack.plugins.module_utils.name); other imports are not (such
    programs use the standard library only).
options:
  _terms:
    description: Names of module utilities (without C(.py)).
    required: true
    type: list
    elements: str
author:
  - mailstack developers (@mailops)
'''

EXAMPLES = r'''
- name: The maildir_sync program and its parts
  ansible.builtin.copy:
    src: "{{ item }}"
    dest: /usr/local/lib/mailstack/{{ item | basename }}
    mode: "0644"
  loop: "{{ lookup('mailops.mailstack.module_utils_files', 'maildir_sync', wantlist=True) }}"
'''

RETURN = r'''
_raw:
  description: Absolute paths on the controller, the named files first, then what they import, each once.
  type: list
  elements: path
'''

import ast
import os
from importlib import import_module

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase

PACKAGE = 'ansible_collections.mailops.mailstack.plugins.module_utils'


def _directories():
    """The module_utils directories of the collection, as its loader on the controller sees them."""
    try:
        return list(import_module(PACKAGE).__path__)
    except ImportError as e:
        raise AnsibleLookupError('cannot find the module utilities of mailops.mailstack: %s' % to_native(e))


def _path(name, directories):
    if not name or '.' in name or '/' in name:
        raise AnsibleLookupError('%r is not the name of a module utility (give it without .py)' % name)
    for d in directories:
        path = os.path.join(d, name + '.py')
        if os.path.isfile(path):
            return os.path.abspath(path)
    raise AnsibleLookupError('mailops.mailstack has no module utility %s (looked in %s)' % (name, ', '.join(directories)))


def _imported(path):
    """Names of the collection's module utilities that the file imports."""
    with open(path, 'rb') as f:
        tree = ast.parse(f.read(), path)
    names = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 1:
            names += [node.module] if node.module else [a.name for a in node.names]
        elif node.level == 0 and node.module == PACKAGE:
            names += [a.name for a in node.names]
        elif node.level == 0 and (node.module or '').startswith(PACKAGE + '.'):
            names.append(node.module[len(PACKAGE) + 1:])
    return [n.split('.')[0] for n in names]


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        directories = _directories()
        paths = []
        todo = [to_native(t) for t in terms]
        while todo:
            path = _path(todo.pop(0), directories)
            if path not in paths:
                paths.append(path)
                todo += _imported(path)
        return paths
