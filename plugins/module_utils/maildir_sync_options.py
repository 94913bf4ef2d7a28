# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""maildir_sync's options: the table behind the module's argument_spec and their checks.

The values arrive typed - from AnsibleModule in the module, from the standalone program's
config reader (maildir_sync.py) on the hosts; ``check_options`` completes the defaults and
checks what a type cannot say (ranges, patterns, names).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re


DOVECOT_MODES = ('rebuild_indexes', 'exclude_indexes', 'exclude_all', 'copy')

# name: (type, default, extra) - the module's argument_spec is built from this
# table, and the standalone program's config is read against it.
OPTIONS = (
    ('src', 'str', None, dict(required=True)),
    ('dest', 'str', None, dict(required=True)),
    ('delete', 'bool', False, {}),
    ('dovecot_files', 'str', 'rebuild_indexes', dict(choices=DOVECOT_MODES)),
    ('excludes', 'list', [], dict(elements='str')),
    ('bwlimit', 'int', 0, {}),
    ('compress', 'bool', False, {}),
    ('create_dest', 'bool', False, {}),
    ('chown', 'str', None, {}),
    ('flag_separator', 'str', ':', {}),
    ('ssh_user', 'str', None, {}),
    ('ssh_port', 'int', None, {}),
    ('ssh_private_key', 'path', None, {}),
    ('ssh_options', 'list', [], dict(elements='str')),
    ('timeout', 'int', 60, {}),
    ('rsync_path', 'str', None, {}),
)
OPTION_NAMES = tuple(o[0] for o in OPTIONS)


class SyncError(Exception):
    """An error with a message fit for the user; ``result`` goes into the failure."""

    def __init__(self, msg, **result):
        super(SyncError, self).__init__(msg)
        self.result = result


def argument_spec():
    """AnsibleModule argument_spec built from OPTIONS."""
    spec = {}
    for name, typ, default, extra in OPTIONS:
        d = dict(type=typ)
        if default is not None and default != []:
            d['default'] = default
        elif typ == 'list':
            d['default'] = []
        d.update(extra)
        spec[name] = d
    return spec


def check_options(raw, convert=None):
    """Validate and complete the options; raises SyncError naming the offending option.

    The values are typed already (AnsibleModule's params). ``convert(name, type, value)``, when
    given, is applied to each value first, in the table's order - the standalone program reads its
    JSON config with it (maildir_sync.py).
    """
    if not isinstance(raw, dict):
        raise SyncError('the options must be a JSON object (a dict), got %s' % type(raw).__name__)
    unknown = sorted(k for k in raw if k not in OPTION_NAMES)
    if unknown:
        raise SyncError('unknown option(s) %s; valid options: %s' % (', '.join(unknown), ', '.join(OPTION_NAMES)))
    opts = {}
    for name, typ, default, extra in OPTIONS:
        value = raw.get(name)
        if convert is not None:
            value = convert(name, typ, value)
        if value is None:
            if extra.get('required'):
                raise SyncError('%s: this option is required' % name)
            value = list(default) if isinstance(default, list) else default
        if 'choices' in extra and value not in extra['choices']:
            raise SyncError('%s: %r is not one of %s' % (name, value, ', '.join(extra['choices'])))
        opts[name] = value
    _check_values(opts)
    return opts


def _check_values(opts):
    """What the types do not say: ranges, the flag separator, patterns, ssh options, names."""
    for name in ('bwlimit', 'timeout'):
        if opts[name] < 0:
            raise SyncError('%s: must be 0 or more, got %d' % (name, opts[name]))
    if opts['ssh_port'] is not None and not 0 < opts['ssh_port'] < 65536:
        raise SyncError('ssh_port: %d is not a TCP port (1-65535)' % opts['ssh_port'])
    sep = opts['flag_separator']
    if len(sep) != 1 or sep in '/.,' or sep.isalnum() or sep.isspace():
        raise SyncError("flag_separator: %r must be one character other than a letter, digit, '/', '.', ',' or "
                        "space (Dovecot uses ':' unless maildir_info_separator says otherwise)" % sep)
    for i, pat in enumerate(opts['excludes']):
        where = 'excludes[%d]' % i
        if not pat.strip():
            raise SyncError('%s: empty pattern' % where)
        if '\n' in pat or '\r' in pat:
            raise SyncError('%s: %r contains a line break' % (where, pat))
        if pat[:2] in ('+ ', '- ') or pat.startswith('!'):
            raise SyncError('%s: %r - give plain rsync exclude patterns, without filter-rule prefixes' % (where, pat))
    for i, o in enumerate(opts['ssh_options']):
        if not re.match(r'^[A-Za-z][A-Za-z0-9]*(=|\s+)\S', o) or '\n' in o:
            raise SyncError('ssh_options[%d]: %r is not an ssh_config option such as StrictHostKeyChecking=yes'
                            % (i, o))
    if opts['chown'] is not None and not re.match(r'^[^:\s]*(:[^:\s]*)?$', opts['chown']):
        raise SyncError("chown: %r must be USER, USER:GROUP or :GROUP" % opts['chown'])
    for name in ('ssh_user', 'rsync_path'):
        v = opts[name]
        if v is not None and (not v.strip() or '\n' in v):
            raise SyncError('%s: %r is empty or contains a line break' % (name, v))
    if opts['ssh_user'] is not None and not re.match(r'^[A-Za-z0-9._][A-Za-z0-9._-]*$', opts['ssh_user']):
        raise SyncError('ssh_user: %r is not a user name' % opts['ssh_user'])
