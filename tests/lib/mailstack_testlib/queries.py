# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SQL the tiers send to the mail database, as the roles render it
(bench/run scale, and the tests of those queries).

render(tmp) runs ansible-playbook on this machine (connection local) over
each example inventory (inventories/examples/<topology>): first the real
playbooks/wire.yml (the topology, each host's options from the wiring, the
checks), then, on the hosts the wiring gives the role, the real templates of
roles/postfix (the map files, one per postfix__maps entry) and roles/dovecot
(dovecot-sql.conf.ext) into tmp, through a throw-away role whose defaults,
vars and templates ARE the role's (symlinks): the same variable precedence
as a site.yml run, nothing copied. queries(tmp) reads the rendered files
back: one Query per query line, with the hosts and file it came from.

Nothing here contacts a host: the examples' hosts are reached with
connection local (extra vars), and the rendered files stay in tmp (they hold
the example vault's passwords; nothing prints them).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import collections
import os
import re
import subprocess
import sys

from .runner import REPO, ansible_env, binary

TOPOLOGIES = ('single', 'backup_mx', 'nfs_shared', 'sharded')
EXAMPLES = os.path.join(REPO, 'inventories', 'examples')

# One query of a rendered file: its text (Postfix's or Dovecot's %
# variables unsubstituted), which setting of which file holds it, and the
# hosts ("topology/host") whose file has that same text.
Query = collections.namedtuple('Query', 'service setting sql hosts')

_RENDER_TASKS = {
    'postfix': '''---
- name: The directory of the rendered files
  ansible.builtin.file:
    path: "{{ mailstack_render_dir }}/{{ inventory_hostname }}/postfix"
    state: directory
    mode: "0700"

- name: The map files of this host's mode (roles/postfix, templates/etc/postfix/sql/map.cf.j2)
  ansible.builtin.template:
    src: etc/postfix/sql/map.cf.j2
    dest: "{{ mailstack_render_dir }}/{{ inventory_hostname }}/postfix/{{ item }}.cf"
    mode: "0600"
  loop: "{{ postfix__maps }}"
''',
    'dovecot': '''---
- name: The directory of the rendered files
  ansible.builtin.file:
    path: "{{ mailstack_render_dir }}/{{ inventory_hostname }}/dovecot"
    state: directory
    mode: "0700"

- name: The SQL file of this host's mode (roles/dovecot, templates/etc/dovecot/dovecot-sql.conf.ext.j2)
  ansible.builtin.template:
    src: etc/dovecot/dovecot-sql.conf.ext.j2
    dest: "{{ mailstack_render_dir }}/{{ inventory_hostname }}/dovecot/dovecot-sql.conf.ext"
    mode: "0600"
''',
}

_PLAYBOOK = '''---
- name: The wiring, as site.yml runs it
  ansible.builtin.import_playbook: %(wire)s
%(plays)s'''

_PLAY = '''
- name: Render the templates of %(role)s
  hosts: mailstack_role_%(role)s
  gather_facts: false
  roles:
    - render_%(role)s
'''


def _link(src, dst):
    if not os.path.lexists(dst):
        os.symlink(src, dst)


def _setup(tmp):
    """tmp/roles: every role of the collection (wire.yml reads their
    argument specs at playbook_dir/../roles); tmp/playbooks/roles/render_<role>:
    the role's defaults, vars and templates with a task that renders."""
    roles = os.path.join(tmp, 'roles')
    render_roles = os.path.join(tmp, 'playbooks', 'roles')
    os.makedirs(roles, exist_ok=True)
    os.makedirs(render_roles, exist_ok=True)
    for name in os.listdir(os.path.join(REPO, 'roles')):
        _link(os.path.join(REPO, 'roles', name), os.path.join(roles, name))
    for role, tasks in _RENDER_TASKS.items():
        top = os.path.join(render_roles, 'render_' + role)
        os.makedirs(os.path.join(top, 'tasks'), exist_ok=True)
        for part in ('defaults', 'vars', 'templates'):
            _link(os.path.join(REPO, 'roles', role, part), os.path.join(top, part))
        with open(os.path.join(top, 'tasks', 'main.yml'), 'w') as f:
            f.write(tasks)
    path = os.path.join(tmp, 'playbooks', 'render.yml')
    with open(path, 'w') as f:
        f.write(_PLAYBOOK % dict(wire=os.path.join(REPO, 'playbooks', 'wire.yml'),
                                 plays=''.join(_PLAY % dict(role=r) for r in sorted(_RENDER_TASKS))))
    return path


def render(tmp, topologies=TOPOLOGIES, timeout=600):
    """Renders the files of every example into tmp/<topology>/<host>/; the
    ansible-playbook runs go side by side. Raises RuntimeError naming the
    example whose run failed or took longer than timeout seconds."""
    path = _setup(tmp)
    env = ansible_env(ANSIBLE_HOME=os.path.join(tmp, 'ansible-home'),
                      ANSIBLE_LOCAL_TEMP=os.path.join(tmp, 'ansible-local'),
                      ANSIBLE_REMOTE_TEMP=os.path.join(tmp, 'ansible-remote'))
    env.pop('ANSIBLE_VAULT_PASSWORD_FILE', None)
    runs = {}
    for topology in topologies:
        out = os.path.join(tmp, topology)
        os.makedirs(out, exist_ok=True)
        log = open(os.path.join(tmp, topology + '.log'), 'w')
        runs[topology] = (log, subprocess.Popen(
            _args(topology, out, path), env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT))
    failed = []
    for topology, (log, proc) in sorted(runs.items()):
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for dummy, other in runs.values():
                other.kill()
                other.wait()
            raise RuntimeError('rendering the templates of the example %s took more than %d s (log: %s)'
                               % (topology, timeout, log.name))
        log.close()
        if rc != 0:
            with open(log.name) as f:
                failed.append('%s (rc %d):\n%s' % (topology, rc, f.read()[-3000:]))
    if failed:
        raise RuntimeError('rendering the templates of the example inventories failed: ' + '\n'.join(failed))


def _args(topology, out, path):
    return [binary('ansible-playbook'), '-i', os.path.join(EXAMPLES, topology),
            '--vault-password-file', os.path.join(EXAMPLES, 'vault-password.txt'),
            # Every example host is this machine, as root, without sudo.
            '-e', 'ansible_connection=local', '-e', 'ansible_become=false',
            '-e', 'ansible_python_interpreter=' + sys.executable,
            '-e', 'mailstack_render_dir=' + out, path]


_SETTING = re.compile(r'^(\w+_query|query)\s*=\s*(.*)$')


def _settings(path):
    """(setting, value) of each query of a rendered file: Postfix's
    `query = ...` (one line), Dovecot's `x_query = ... \\` (continued lines)."""
    lines, joined = [], ''
    with open(path) as f:
        for line in f:
            line = line.rstrip('\n')
            if line.endswith('\\'):
                joined += line[:-1].strip() + ' '
                continue
            lines.append(joined + line.strip())
            joined = ''
    for line in lines:
        m = _SETTING.match(line)
        if m:
            yield m.group(1), ' '.join(m.group(2).split())


def queries(tmp, topologies=TOPOLOGIES):
    """The queries of the files render(tmp) wrote, one Query per distinct
    (service, setting, text), with every topology/host that has it."""
    found = collections.OrderedDict()
    for topology in topologies:
        top = os.path.join(tmp, topology)
        for host in sorted(os.listdir(top)):
            for service in ('postfix', 'dovecot'):
                d = os.path.join(top, host, service)
                if not os.path.isdir(d):
                    continue
                for name in sorted(os.listdir(d)):
                    for key, sql in _settings(os.path.join(d, name)):
                        setting = name[:-len('.cf')] if service == 'postfix' else key
                        found.setdefault((service, setting, sql), []).append('%s/%s' % (topology, host))
    return [Query(service, setting, sql, hosts) for (service, setting, sql), hosts in found.items()]
