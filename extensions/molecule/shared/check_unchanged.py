"""Run a playbook in check mode; exit 1 naming each task that reported a change.

Usage: check_unchanged.py INVENTORY PLAYBOOK [ANSIBLE-PLAYBOOK OPTIONS...]

Needs mailstack_testlib (tests/lib) on PYTHONPATH: the provisioner's
environment in extensions/molecule/config.yml gives it.
"""

import sys

from mailstack_testlib import playbook_report, task_results


def main():
    inventory, playbook, options = sys.argv[1], sys.argv[2], sys.argv[3:]
    # The json callback on stdout; its report is the last thing printed there.
    report, proc = playbook_report('-i', inventory, '--check', *options, playbook)
    if report is None:
        sys.exit('check mode run failed (rc %d), no report:\n%s\n%s'
                 % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    changed, failed = [], []
    for host, task, result in task_results(report):
        items = result.get('results') or [result]
        if result.get('changed') or any(isinstance(i, dict) and i.get('changed') for i in items):
            changed.append('[%s] %s' % (host, task))
        if result.get('failed') or result.get('unreachable'):
            failed.append('[%s] %s: %s' % (host, task, result.get('msg', '')))
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
