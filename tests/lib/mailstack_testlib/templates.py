# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A role's template rendered as the template module renders it (Jinja2,
trim_blocks), with the role's defaults and internal variables, then the
test's: for the files whose lines a test reads (Postfix's maps, Dovecot's
SQL connect line) or hands to the real program (postmap)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

import jinja2
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def role_variables(role):
    """The role's defaults, then its vars/main.yml (values as written: a
    value that is itself a template stays a string)."""
    variables = {}
    for part in ('defaults', 'vars'):
        path = os.path.join(ROOT, 'roles', role, part, 'main.yml')
        if os.path.exists(path):
            with open(path) as f:
                variables.update(yaml.safe_load(f) or {})
    return variables


def _ipwrap(value):
    """ansible.utils.ipwrap for one address: an IPv6 address in brackets."""
    value = str(value)
    return '[%s]' % value if ':' in value and not value.startswith('[') else value


def render(role, template, _filters=None, **overrides):
    """roles/<role>/templates/<template> rendered with the role's variables
    and overrides; _filters: more filters by the name the template uses
    (a collection's own, such as mailops.mailstack.mail_firewall_ruleset)."""
    folder = os.path.join(ROOT, 'roles', role, 'templates')
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(folder), trim_blocks=True,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters['ansible.utils.ipwrap'] = _ipwrap
    env.filters.update(_filters or {})
    variables = role_variables(role)
    variables.update(ansible_managed='Ansible managed', **overrides)
    return env.get_template(template).render(**variables)


def setting(text, name):
    """The value of the first 'name = value' line of a rendered file."""
    for line in text.splitlines():
        key, sep, value = line.partition('=')
        if sep and key.strip() == name:
            return value.strip()
    raise AssertionError('no %s line in:\n%s' % (name, text))
