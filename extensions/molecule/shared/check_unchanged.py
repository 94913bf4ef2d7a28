"""Run a playbook in check mode; exit 1 naming each task that reported a change.

Usage: check_unchanged.py INVENTORY PLAYBOOK [ANSIBLE-PLAYBOOK OPTIONS...]
"""

import json
import os
import subprocess
import sys


def main():
    inventory, playbook, options = sys.argv[1], sys.argv[2], sys.argv[3:]
    # The json callback on stdout; its report is the last thing printed there.
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK='ansible.posix.json', ANSIBLE_NOCOLOR='1')
    env.pop('ANSIBLE_CALLBACKS_ENABLED', None)
    bindir = os.path.dirname(sys.executable)
    proc = subprocess.run([os.path.join(bindir, 'ansible-playbook'), '-i', inventory, '--check'] + options + [playbook],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          check=False)
    start = proc.stdout.find('\n{')
    try:
        report = json.loads(proc.stdout if proc.stdout.startswith('{') else proc.stdout[start + 1:])
    except ValueError:
        sys.exit('check mode run failed (rc %d), no report:\n%s\n%s'
                 % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    changed, failed = [], []
    for play in report.get('plays', []):
        for task in play.get('tasks', []):
            for host, result in sorted(task.get('hosts', {}).items()):
                items = result.get('results') or [result]
                if result.get('changed') or any(isinstance(i, dict) and i.get('changed') for i in items):
                    changed.append('[%s] %s' % (host, task['task']['name']))
                if result.get('failed') or result.get('unreachable'):
                    failed.append('[%s] %s: %s' % (host, task['task']['name'], result.get('msg', '')))
    if proc.returncode != 0 or failed:
        sys.exit('check mode run failed (rc %d):\n  %s\n%s'
                 % (proc.returncode, '\n  '.join(failed), proc.stderr[-3000:]))
    if changed:
        sys.exit('check mode on the converged hosts would change %d task(s):\n  %s'
                 % (len(changed), '\n  '.join(changed)))
    hosts = sorted(h for h in report.get('stats', {}) if h != 'localhost')
    if not hosts:
        sys.exit('check mode %s: no host ran' % ' '.join(options))
    print('check mode %schanged nothing on %s' % (' '.join(options) + ': ' if options else '', ', '.join(hosts)))


if __name__ == '__main__':
    main()
