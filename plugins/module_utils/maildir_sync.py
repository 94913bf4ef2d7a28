# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""maildir_sync's standalone program, and the names of its parts in one place.

The Ansible module mailops.mailstack.maildir_sync imports the parts
(maildir_sync_*.py beside this file) itself; AnsibleModule types its options.
This file is the program a systemd timer runs on hosts without Ansible
(standard library only) - exactly the module's logic::

    python3 maildir_sync.py --config /etc/mailstack/maildir-sync.json [--check]

The JSON object holds the module's options by the same names. On success the
program prints the result as one line of JSON and exits 0; on error it prints
``maildir_sync: error: ...`` on stderr and exits 1 (2 for a bad config).

The parts import each other relatively, as module_utils of the collection.
Run as a program, or imported by its file name (the primary's forced command,
mirror_serve.py, with the directory on sys.path), this file loads itself again
as a module of a package made of its own directory, ``maildir_sync_program``,
and hands over to that module. So the program needs nothing but this
directory's maildir_sync*.py files, wherever they are: plugins/module_utils/ of
a checkout or of an installed collection, or /usr/local/lib/mailstack/ where
the role backup_mx installs them.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import re
import sys

PROGRAM_PACKAGE = 'maildir_sync_program'


def _as_program_module():
    """This file as PROGRAM_PACKAGE.maildir_sync, its directory as that package."""
    import importlib
    import types
    if PROGRAM_PACKAGE not in sys.modules:
        package = types.ModuleType(PROGRAM_PACKAGE)
        package.__path__ = [os.path.dirname(os.path.abspath(__file__))]
        sys.modules[PROGRAM_PACKAGE] = package
    return importlib.import_module(PROGRAM_PACKAGE + '.maildir_sync')


if __package__:  # a module_utils (of the collection, or of PROGRAM_PACKAGE)
    from .maildir_sync_listing import REMOTE_MISSING, REMOTE_NOT_DIR, Tree, list_local, list_script, parse_listing
    from .maildir_sync_options import DOVECOT_MODES, OPTION_NAMES, OPTIONS, SyncError, argument_spec
    from .maildir_sync_options import check_options as _check_options
    from .maildir_sync_paths import Excluder, Location, parse_location
    from .maildir_sync_plan import Plan, make_plan
    from .maildir_sync_rsync import COUNTS, count_items, parse_items
    from .maildir_sync_run import MaildirSync, sync
elif __name__ == '__main__':  # python3 maildir_sync.py --config ...
    raise SystemExit(_as_program_module().main())
else:  # import maildir_sync: the same module, loaded as a part of its package
    sys.modules[__name__] = _as_program_module()

__all__ = ('COUNTS', 'DOVECOT_MODES', 'OPTIONS', 'OPTION_NAMES', 'REMOTE_MISSING', 'REMOTE_NOT_DIR', 'Excluder',
           'Location', 'MaildirSync', 'Plan', 'SyncError', 'Tree', 'argument_spec', 'check_options', 'count_items',
           'list_local', 'list_script', 'main', 'make_plan', 'parse_items', 'parse_listing', 'parse_location', 'sync')


# --- the config file -----------------------------------------------------------------

def _type_error(name, typ, value):
    return SyncError('%s: expected %s, got %s %r' % (name, typ, type(value).__name__, value))


def _config_value(name, typ, value):
    """A value of the JSON config as its option's type (for the module AnsibleModule does this).

    Stricter than AnsibleModule: a list must be a JSON list of strings, an integer is no boolean.
    """
    if value is None:
        return None
    if typ in ('str', 'path'):
        if not isinstance(value, str):
            raise _type_error(name, 'a string', value)
        return os.path.expanduser(value) if typ == 'path' else value
    if typ == 'bool':
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ('yes', 'true', 'on', '1', 'no', 'false', 'off', '0'):
            return value.lower() in ('yes', 'true', 'on', '1')
        raise _type_error(name, 'a boolean', value)
    if typ == 'int':
        if isinstance(value, bool):
            raise _type_error(name, 'an integer', value)
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.match(r'^-?\d+$', value.strip()):
            return int(value)
        raise _type_error(name, 'an integer', value)
    if typ == 'list':
        if not isinstance(value, list):
            raise _type_error(name, 'a list', value)
        for i, v in enumerate(value):
            if not isinstance(v, str):
                raise _type_error('%s[%d]' % (name, i), 'a string', v)
        return list(value)
    raise AssertionError(typ)  # pragma: no cover


def check_options(raw):
    """The options of a JSON config, typed, validated and completed; raises SyncError naming the option."""
    return _check_options(raw, convert=_config_value)


# --- the program ---------------------------------------------------------------------

def _say(stream, text):
    stream.write(text + '\n')
    stream.flush()


def main(argv=None):
    """The program a systemd timer runs; returns the exit code."""
    import argparse
    ap = argparse.ArgumentParser(
        prog='maildir_sync.py',
        description='rsync of Maildir trees that never loses mail (the logic of mailops.mailstack.maildir_sync).')
    ap.add_argument('--config', required=True, help='JSON file with the module options (src, dest, ...)')
    ap.add_argument('--check', action='store_true', help='dry run: report what would change, change nothing')
    args = ap.parse_args(argv)
    try:
        with open(args.config) as f:
            options = json.load(f)
    except (IOError, OSError) as e:
        _say(sys.stderr, 'maildir_sync: error: cannot read %s: %s' % (args.config, e.strerror or e))
        return 2
    except ValueError as e:
        _say(sys.stderr, 'maildir_sync: error: %s is not valid JSON: %s' % (args.config, e))
        return 2
    try:
        run = MaildirSync(check_options(options), check_mode=args.check)
    except SyncError as e:
        _say(sys.stderr, 'maildir_sync: error: %s: %s' % (args.config, e))
        return 2
    try:
        result = run.run()
    except SyncError as e:
        _say(sys.stderr, 'maildir_sync: error: %s' % e)
        return 1
    for w in result.get('warnings', ()):
        _say(sys.stderr, 'maildir_sync: warning: %s' % w)
    _say(sys.stdout, json.dumps(result, sort_keys=True))
    return 0
