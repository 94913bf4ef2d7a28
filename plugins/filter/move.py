# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The users move_user.yml moves, from one of its three forms (see mail_move_list.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

# The address check of the playbook (and of mail_user): one @, no blanks.
ADDRESS = re.compile(r'^[^@\s]+@[^@\s]+$')


def _given(value):
    return value is not None and value != '' and value != []


def _from_list(emails):
    """A list, or one text of addresses separated by commas, blanks or new lines."""
    items = [emails] if isinstance(emails, string_types) else emails
    if not isinstance(items, (list, tuple)):
        raise AnsibleFilterError('mailstack_move_emails: a list of addresses, not %s' % type(emails).__name__)
    found = []
    for number, item in enumerate(items, 1):
        for word in re.split(r'[\s,]+', str(item).strip()):
            if word and not ADDRESS.match(word):
                raise AnsibleFilterError('mailstack_move_emails: item %d: %r is not an address' % (number, word))
            found.append(word)
    return found


def _from_file(text, name):
    """One address a line; blank lines and lines starting with # are skipped."""
    found = []
    for number, line in enumerate(str(text).splitlines(), 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        if not ADDRESS.match(line):
            raise AnsibleFilterError('mailstack_move_file %s: line %d: %r is not an address (one address a line; '
                                     'blank lines and lines starting with # are skipped)' % (name, number, line))
        found.append(line)
    return found


def mail_move_list(email, emails=None, file_text=None, file_name=''):
    """The addresses to move, in order, each once (lower case)."""
    forms = [name for name, value in (('mailstack_move_email', email), ('mailstack_move_emails', emails),
                                      ('mailstack_move_file', file_text)) if _given(value)]
    if len(forms) != 1:
        raise AnsibleFilterError('give the users to move in one form: mailstack_move_email (one address), '
                                 'mailstack_move_emails (a list) or mailstack_move_file (a file, one address a '
                                 'line); %s' % ('got ' + ' and '.join(forms) if forms else 'got none'))
    if forms == ['mailstack_move_email']:
        if not ADDRESS.match(str(email).strip()):
            raise AnsibleFilterError('mailstack_move_email: %r is not an address' % email)
        found = [str(email).strip()]
    elif forms == ['mailstack_move_emails']:
        found = _from_list(emails)
    else:
        found = _from_file(file_text, file_name)
    result = []
    for address in (a.lower() for a in found):
        if address not in result:
            result.append(address)
    if not result:
        raise AnsibleFilterError('%s names no address' % forms[0])
    return result


class FilterModule(object):
    def filters(self):
        return {'mail_move_list': mail_move_list}
