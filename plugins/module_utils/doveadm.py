# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A small client of Dovecot's doveadm server over TCP (protocol 1.0).

The doveadm server runs any doveadm command for a client that knows the
shared ``doveadm_password``: ``kick`` on a mailbox server, ``proxy kick`` on
a proxy, ``mailbox status`` for a user's mailbox. The exchange, as Dovecot
2.3's doveadm/client-connection-tcp.c implements it::

    C: VERSION<TAB>doveadm-server<TAB>1<TAB>0
    S: -                                  (authentication needed)
    C: PLAIN<TAB>base64(NUL "doveadm" NUL password)
    S: +
    C: <flags><TAB><user><TAB><command words and arguments, tab-escaped>
    S: <values, each tab-escaped and followed by TAB> LF "+" LF   (or LF "-ERR" LF)
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import socket

VERSION_LINE = b'VERSION\tdoveadm-server\t1\t0\n'

_ESCAPES = (('\x01', '\x011'), ('\t', '\x01t'), ('\r', '\x01r'), ('\n', '\x01n'))


class DoveadmError(Exception):
    def __init__(self, msg, code=None):
        super(DoveadmError, self).__init__(msg)
        self.code = code


def tab_escape(text):
    for raw, escaped in _ESCAPES:
        text = text.replace(raw, escaped)
    return text


def tab_unescape(text):
    for raw, escaped in reversed(_ESCAPES):
        text = text.replace(escaped, raw)
    return text


def split_address(target, default_port):
    """'10.0.0.5', '10.0.0.5:24245', '[fd00::5]:24245', 'fd00::5' -> (host, port)."""
    target = target.strip()
    if target.startswith('['):
        host, _sep, rest = target[1:].partition(']')
        return host, int(rest[1:]) if rest.startswith(':') else default_port
    if target.count(':') == 1:
        host, port = target.split(':')
        return host, int(port)
    return target, default_port


def parse_reply(data):
    """(ok, code, values) of one reply: the values the command printed, and
    whether it ended with '+' (code '') or '-CODE'."""
    if not data.endswith(b'\n'):
        raise DoveadmError('incomplete reply from the doveadm server')
    body, _sep, status = data[:-1].rpartition(b'\n')
    status = status.decode('utf-8', 'replace')
    if status not in ('+',) and not status.startswith('-'):
        raise DoveadmError('unexpected reply from the doveadm server: %r' % status)
    text = body.decode('utf-8', 'replace')
    values = [tab_unescape(v) for v in text.split('\t')] if text else []
    if values and values[-1] == '':
        values.pop()
    return status == '+', status[1:], values


class DoveadmClient(object):
    """One authenticated connection to a doveadm server."""

    def __init__(self, target, password, default_port=24245, timeout=60):
        self.host, self.port = split_address(target, default_port)
        self.name = '%s:%d' % (self.host, self.port)
        try:
            self.sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except (OSError, socket.error) as e:
            raise DoveadmError('cannot connect to the doveadm server at %s: %s' % (self.name, e))
        self._buf = b''
        try:
            self.sock.sendall(VERSION_LINE)
            if self._line() != b'-':
                raise DoveadmError('%s: unexpected handshake' % self.name)
            token = base64.b64encode(b'\0doveadm\0' + password.encode('utf-8'))
            self.sock.sendall(b'PLAIN\t' + token + b'\n')
            if self._line() != b'+':
                raise DoveadmError('%s refused the doveadm password' % self.name)
        except (OSError, socket.error) as e:
            self.close()
            raise DoveadmError('%s: %s' % (self.name, e))

    def _line(self):
        while b'\n' not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise DoveadmError('%s closed the connection' % self.name)
            self._buf += chunk
        line, _sep, self._buf = self._buf.partition(b'\n')
        return line

    def run(self, words, user=''):
        """Run one command (a list of words and arguments); return its values.
        A failing command raises DoveadmError with its code (NOTFOUND: for
        example no session to kick). The server may drop its privileges for a
        mail command: use one connection per command."""
        line = '\t'.join(tab_escape(w) for w in [''] + [user] + list(words)) + '\n'
        try:
            self.sock.sendall(line.encode('utf-8'))
            # The printed values (one line, possibly empty), then the status.
            data = self._line() + b'\n'
            data += self._line() + b'\n'
        except (OSError, socket.error) as e:
            raise DoveadmError('%s: %s' % (self.name, e))
        ok, code, values = parse_reply(data)
        if not ok:
            why = (' (%s)' % code) if code else ''
            raise DoveadmError('%s: doveadm %s failed%s' % (self.name, ' '.join(words), why), code=code)
        return values

    def close(self):
        try:
            self.sock.close()
        except Exception:
            pass
