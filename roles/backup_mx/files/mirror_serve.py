# Managed by mailops.mailstack (role backup_mx).
"""Forced command of the backup MX's mirror key on the primary.

authorized_keys runs `python3 /usr/local/lib/mailstack/mirror_serve.py MAIL_ROOT`
for that key, whatever the client asked; the client's command is in SSH_ORIGINAL_COMMAND.
Two commands are allowed, both read-only and both under MAIL_ROOT:

- maildir_sync's listing of MAIL_ROOT (exactly the command its code builds);
- an rsync sender, run through rrsync -ro -absolute MAIL_ROOT, which refuses
  writes and paths outside MAIL_ROOT.

Anything else is refused and logged on stderr (the client sees it).
"""
import os
import shlex
import sys

sys.path.insert(0, '/usr/local/lib/mailstack')
import maildir_sync  # noqa: E402  pylint: disable=wrong-import-position


def main():
    if len(sys.argv) != 2:
        sys.stderr.write('usage: mirror_serve.py MAIL_ROOT\n')
        return 2
    root = os.path.normpath(sys.argv[1])
    command = os.environ.get('SSH_ORIGINAL_COMMAND', '')
    for path in (root, root + '/'):
        if command == 'sh -c ' + shlex.quote(maildir_sync.list_script(path)):
            os.execv('/bin/sh', ['sh', '-c', maildir_sync.list_script(path)])
    try:
        words = shlex.split(command)
    except ValueError:
        words = []
    if words[:2] == ['rsync', '--server'] and '--sender' in words:
        os.execv('/usr/bin/rrsync', ['rrsync', '-ro', '-absolute', root])
    sys.stderr.write('mailstack mirror: refused (only the mirror of %s is allowed): %s\n'
                     % (root, command[:200]))
    return 1


if __name__ == '__main__':
    sys.exit(main())
