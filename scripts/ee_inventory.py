#!/usr/bin/env python
"""A Molecule scenario's inventory as an AWX job receives it (scripts/ee.sh job).

    ee_inventory.py SOURCE_DIR DEST_DIR PROJECT_DIR RUNNER_PROJECT_DIR

Molecule reaches the hosts through ``podman exec`` with a key file on the
controller; an AWX job reaches them over SSH on the network, with the key of
its machine credential in ssh-agent. So the copy drops the ProxyCommand, the
key file and Molecule's own variables, and moves every path under the project
checkout (PROJECT_DIR) to where the job sees the project (RUNNER_PROJECT_DIR).
Everything else (groups, group and host variables) is kept as it is.
"""

import pathlib
import sys

import yaml

DROPPED = ('ansible_ssh_private_key_file', 'ansible_podman_executable')
SSH_ARGS = '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'


def moved(value, old, new):
    """value with every string under the old project directory moved to new."""
    if isinstance(value, str):
        return value.replace(old.rstrip('/') + '/', new.rstrip('/') + '/')
    if isinstance(value, list):
        return [moved(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: moved(v, old, new) for k, v in value.items()}
    return value


def job_host(hostvars):
    """One host's variables with the job's connection instead of Molecule's."""
    out = {k: v for k, v in (hostvars or {}).items() if k not in DROPPED}
    if out.get('ansible_connection', 'ssh') == 'ssh':
        out['ansible_ssh_common_args'] = SSH_ARGS
    return out


def job_inventory(inventory):
    """The YAML inventory with each group's hosts rewritten and Molecule's vars left out."""
    out = {}
    for group, body in inventory.items():
        body = body or {}
        new = {}
        if body.get('hosts'):
            new['hosts'] = {h: job_host(v) for h, v in body['hosts'].items()}
        extra = {k: v for k, v in (body.get('vars') or {}).items() if not k.startswith('molecule_')}
        if extra:
            new['vars'] = extra
        if body.get('children'):
            new['children'] = body['children']
        out[group] = new
    return out


def main(source, dest, project, runner_project):
    source, dest = pathlib.Path(source), pathlib.Path(dest)
    inventory = yaml.safe_load((source / 'ansible_inventory.yml').read_text())
    dest.mkdir(parents=True, exist_ok=True)
    (dest / 'hosts.yml').write_text(
        yaml.safe_dump(moved(job_inventory(inventory), project, runner_project), sort_keys=True))
    for sub in ('group_vars', 'host_vars'):
        if not (source / sub).is_dir():
            continue
        (dest / sub).mkdir(exist_ok=True)
        for f in sorted((source / sub).iterdir()):
            data = yaml.safe_load(f.read_text()) or {}
            (dest / sub / (f.name + '.yml')).write_text(
                yaml.safe_dump(moved(data, project, runner_project), sort_keys=True))


if __name__ == '__main__':
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
