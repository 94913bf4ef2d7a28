# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""maildir_sync with the real rsync on temporary Maildir trees.

The module runs through ansible-playbook on localhost (conftest's Runner, with
no database behind it: this module needs none, so MariaDB is never started).
Pushes and pulls go over a real sshd listening on a loopback port with its own
host key and authorized key. The standalone program runs under Debian's
python3 with no site-packages at all, which proves it needs no Ansible.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(REPO_ROOT, 'plugins', 'module_utils', 'maildir_sync.py')


def _conftest():
    """tests/integration/conftest.py under a name of its own (pytest imports every conftest as 'conftest')."""
    spec = importlib.util.spec_from_file_location('mailstack_integration_conftest', os.path.join(HERE, 'conftest.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_BASE = _conftest()
Runner = _BASE.Runner
free_port = _BASE._free_port  # pylint: disable=protected-access
COUNTS = ('new', 'flag_changes', 'duplicates_removed', 'updated', 'deleted', 'other_files', 'dirs_created',
          'indexes_rebuilt', 'unchanged', 'vanished', 'bytes_transferred')
T0 = 1700000000


class NoDatabase(object):
    """Stands in for the MariaDB server of conftest's Runner: no connection options to add."""

    def login_args(self, socket_path=False):
        return {}


@pytest.fixture
def playbook(tmp_path):
    d = tmp_path / 'ansible'
    d.mkdir()
    return Runner(NoDatabase(), d)


def sync(playbook, check_mode=False, **args):
    res = playbook.run('maildir_sync', args, check_mode=check_mode)
    assert 'failed' not in res or not res['failed'], (res.get('msg'), playbook.last_output[-3000:])
    return res


def counts(res):
    return dict((k, res[k]) for k in COUNTS)


# --- trees -------------------------------------------------------------------------------

def write(path, text='', mtime=T0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    os.utime(path, (mtime, mtime))


def maildir(root, folder=''):
    path = os.path.join(root, folder) if folder else root
    for sub in ('cur', 'new', 'tmp'):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    return path


def message(md, name, size=200, mtime=T0):
    """A message file; its body depends on the unique base name only."""
    base = name.split('/', 1)[1].split(':', 1)[0]
    write(os.path.join(md, name), ('Subject: %s\n\n' % base).ljust(size, 'x'), mtime)


def mail_root(root):
    """/var/vmail-like: two mailboxes, Maildir++ folders, Dovecot's files, a message being written."""
    alice = maildir(root, 'example.org/alice/Maildir')
    sent = maildir(alice, '.Sent')
    bob = maildir(root, 'example.org/bob/Maildir')
    message(alice, 'cur/1700000001.M1P1.mx1,S=200,W=205:2,S')
    message(alice, 'cur/1700000002.M2P1.mx1,S=200,W=205:2,')
    message(alice, 'new/1700000003.M3P1.mx1,S=200,W=205')
    message(alice, 'cur/1700000004.M4P1.mx1,S=200,W=205:2,RS')
    message(sent, 'cur/1700000005.M5P1.mx1,S=200,W=205:2,S')
    message(bob, 'new/1700000006.M6P1.mx1,S=200,W=205')
    write(os.path.join(alice, 'tmp', '1700000099.M9P9.mx1'), 'half a message')
    for md in (alice, sent, bob):
        write(os.path.join(md, 'dovecot-uidlist'), '3 V1700000000 N10 G0123\n1 :x\n')
        write(os.path.join(md, 'dovecot.index'), 'I' * 100)
        write(os.path.join(md, 'dovecot.index.log'), 'L' * 100)
        write(os.path.join(md, 'dovecot.index.cache'), 'C' * 100)
    write(os.path.join(alice, 'dovecot-keywords'), '0 $Forwarded\n')
    write(os.path.join(alice, 'subscriptions'), 'V\t2\n\nSent\n')
    write(os.path.join(alice, 'dovecot.list.index'), 'l' * 50)
    write(os.path.join(alice, 'maildirsize'), '0S\n400 2\n')
    write(os.path.join(alice, 'dovecot-uidlist.lock'), '')
    write(os.path.join(sent, 'maildirfolder'), '')
    return root


def snapshot(root):
    """Every path under root with size, mtime and mode: 'nothing touched' compares two of these."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_size if n in filenames else 0, st.st_mtime_ns, st.st_mode)
    return out


def messages(root):
    """{folder: sorted message names} of a tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if os.path.basename(dirpath) in ('cur', 'new'):
            folder = os.path.relpath(os.path.dirname(dirpath), root)
            out.setdefault(folder, []).extend(os.path.basename(dirpath) + '/' + f for f in filenames)
        if os.path.basename(dirpath) == 'tmp':
            dirnames[:] = []
    return dict((k, sorted(v)) for k, v in out.items())


def bases(names):
    return [n[4:].split(':', 1)[0] for n in names]


def rename(root, folder, old, new):
    os.rename(os.path.join(root, folder, old), os.path.join(root, folder, new))


def synced_pair(tmp_path):
    """A source mail root and a target copied from it (as an earlier sync left it, indexes of
    its own Dovecot included)."""
    src = mail_root(str(tmp_path / 'src'))
    dst = str(tmp_path / 'dst')
    subprocess.check_call(['cp', '-a', src, dst])
    return src, dst


ALICE = 'example.org/alice/Maildir'


# --- the rules, locally --------------------------------------------------------------------------

def test_first_copy_check_mode_and_idempotence(playbook, tmp_path):
    src = mail_root(str(tmp_path / 'src'))
    dst = tmp_path / 'dst'
    dst.mkdir()
    check = sync(playbook, check_mode=True, src=src, dest=str(dst), create_dest=True)
    assert os.listdir(str(dst)) == []  # check mode changed nothing
    first, again = playbook.tasks([('maildir_sync', dict(src=src, dest=str(dst), create_dest=True), {})] * 2)
    assert counts(check) == counts(first)
    assert first['changed'] and first['new'] == 6 and first['direction'] == 'local'
    assert first['dirs_created'] == 15  # 2 domains' users, 3 Maildirs with cur/new/tmp ...
    assert messages(str(dst)) == messages(src)
    a = os.path.join(str(dst), ALICE)
    # tmp/ exists, empty: the message being written is not copied
    assert os.listdir(os.path.join(a, 'tmp')) == []
    # Dovecot: control files copied, indexes, caches, quota file and locks not
    have = sorted(os.listdir(a))
    assert have == ['.Sent', 'cur', 'dovecot-keywords', 'dovecot-uidlist', 'new', 'subscriptions', 'tmp'], have
    # times and modes kept
    for rel in ('cur/1700000001.M1P1.mx1,S=200,W=205:2,S', 'dovecot-uidlist'):
        s, d = os.stat(os.path.join(src, ALICE, rel)), os.stat(os.path.join(a, rel))
        assert (s.st_mtime, s.st_mode, s.st_size) == (d.st_mtime, d.st_mode, d.st_size)
    assert not again['changed'] and again['unchanged'] == 6
    assert all(again[k] == 0 for k in COUNTS if k != 'unchanged'), again
    assert '--timeout=60' in first['cmd'] and "'--exclude=tmp/*'" in first['cmd']


def test_flag_renames_new_mail_and_target_only_mail(playbook, tmp_path):
    src, dst = synced_pair(tmp_path)
    # on the source: a flag change, a move from new/ to cur/, new mail, one message expunged
    rename(src, ALICE, 'cur/1700000001.M1P1.mx1,S=200,W=205:2,S', 'cur/1700000001.M1P1.mx1,S=200,W=205:2,FS')
    rename(src, ALICE, 'new/1700000003.M3P1.mx1,S=200,W=205', 'cur/1700000003.M3P1.mx1,S=200,W=205:2,S')
    message(os.path.join(src, ALICE), 'new/1700000100.M10P1.mx1,S=200,W=205', mtime=T0 + 100)
    os.unlink(os.path.join(src, ALICE, 'cur/1700000002.M2P1.mx1,S=200,W=205:2,'))
    write(os.path.join(src, ALICE, 'dovecot-uidlist'), '3 V1700000000 N11 G0123\n1 :x\n10 :y\n', T0 + 100)
    # on the target only: mail delivered there
    message(os.path.join(dst, ALICE), 'new/1700000200.M20P2.mx2,S=200,W=205', mtime=T0 + 200)
    before = snapshot(dst)

    check = sync(playbook, check_mode=True, src=src, dest=dst)
    assert snapshot(dst) == before  # check mode changed nothing
    real = sync(playbook, src=src, dest=dst)
    assert counts(real) == counts(check)
    assert (real['new'], real['flag_changes'], real['deleted'], real['duplicates_removed']) == (1, 2, 0, 0)
    assert real['changed']

    got = messages(dst)[ALICE]
    assert 'cur/1700000001.M1P1.mx1,S=200,W=205:2,FS' in got
    assert 'cur/1700000003.M3P1.mx1,S=200,W=205:2,S' in got
    assert 'new/1700000100.M10P1.mx1,S=200,W=205' in got
    # never two copies of one message
    assert len(bases(got)) == len(set(bases(got))), got
    # the target keeps what the source expunged, and what only it received
    assert 'cur/1700000002.M2P1.mx1,S=200,W=205:2,' in got
    assert 'new/1700000200.M20P2.mx2,S=200,W=205' in got
    # the uidlist changed: the folder's indexes, the list index and the quota file are gone ...
    a = os.path.join(dst, ALICE)
    assert not [n for n in os.listdir(a) if n.startswith('dovecot.') or n == 'maildirsize']
    assert real['indexes_rebuilt'] == 5
    # ... those of the unchanged folders are not
    assert os.path.exists(os.path.join(a, '.Sent', 'dovecot.index'))
    assert os.path.exists(os.path.join(dst, 'example.org/bob/Maildir/dovecot.index'))
    with open(os.path.join(a, 'dovecot-uidlist')) as f:
        assert '10 :y' in f.read()

    again = sync(playbook, src=src, dest=dst)
    assert not again['changed'] and again['new'] == again['flag_changes'] == 0

    # delete=true: now the target's own mail and what the source expunged go - excluded files stay
    gone = sync(playbook, src=src, dest=dst, delete=True)
    assert gone['deleted'] == 2 and gone['changed']
    assert messages(dst) == messages(src)
    assert os.path.exists(os.path.join(a, '.Sent', 'dovecot.index'))
    assert sorted(os.listdir(os.path.join(src, ALICE, 'tmp'))) == ['1700000099.M9P9.mx1']


def test_duplicates_left_by_a_plain_rsync_are_removed(playbook, tmp_path):
    src, dst = synced_pair(tmp_path)
    rename(src, ALICE, 'cur/1700000004.M4P1.mx1,S=200,W=205:2,RS', 'cur/1700000004.M4P1.mx1,S=200,W=205:2,FRS')
    rename(src, 'example.org/bob/Maildir', 'new/1700000006.M6P1.mx1,S=200,W=205',
           'cur/1700000006.M6P1.mx1,S=200,W=205:2,S')
    subprocess.check_call(['rsync', '-a', src + '/', dst + '/'])  # what plain rsync makes of it
    assert len(messages(dst)[ALICE]) == 5 and len(messages(dst)['example.org/bob/Maildir']) == 2
    res = sync(playbook, src=src, dest=dst)
    assert res['duplicates_removed'] == 2 and res['new'] == 0 and res['changed']
    assert messages(dst) == messages(src)


@pytest.mark.parametrize('mode, copied, kept', [
    ('exclude_indexes', ['dovecot-uidlist', 'dovecot-keywords'], ['dovecot.index', 'maildirsize']),
    ('exclude_all', [], ['dovecot.index', 'maildirsize']),
    ('copy', ['dovecot-uidlist', 'dovecot.index', 'maildirsize', 'dovecot.list.index'], []),
])
def test_dovecot_file_modes(playbook, tmp_path, mode, copied, kept):
    src, dst = synced_pair(tmp_path)
    a_src, a_dst = os.path.join(src, ALICE), os.path.join(dst, ALICE)
    for name in ('dovecot-uidlist', 'dovecot-keywords', 'dovecot.index', 'maildirsize', 'dovecot.list.index'):
        write(os.path.join(a_src, name), 'changed on the source', T0 + 50)
    message(a_src, 'new/1700000100.M10P1.mx1,S=200,W=205', mtime=T0 + 100)
    os.unlink(os.path.join(a_dst, 'dovecot-uidlist.lock'))  # cp -a copied it
    res = sync(playbook, src=src, dest=dst, dovecot_files=mode)
    assert res['new'] == 1 and res['indexes_rebuilt'] == 0
    for name in copied:
        with open(os.path.join(a_dst, name)) as f:
            assert f.read() == 'changed on the source', name
    for name in kept:
        with open(os.path.join(a_dst, name)) as f:
            assert f.read() != 'changed on the source', name
    assert not os.path.exists(os.path.join(a_dst, 'dovecot-uidlist.lock'))


def test_options_reach_rsync(playbook, tmp_path):
    src, dst = synced_pair(tmp_path)
    junk = maildir(os.path.join(src, ALICE), '.Junk')
    message(junk, 'new/1700000300.M30P1.mx1,S=200,W=205')
    message(os.path.join(src, ALICE), 'new/1700000301.M31P1.mx1,S=200,W=205')
    res = sync(playbook, src=src, dest=dst, bwlimit=1000, excludes=['.Junk/'], timeout=30)
    assert '--bwlimit=1000' in res['cmd'] and '--timeout=30' in res['cmd'] and '--exclude=.Junk/' in res['cmd']
    assert res['new'] == 1
    assert not os.path.exists(os.path.join(dst, ALICE, '.Junk'))


# --- errors: clear, and nothing touched -------------------------------------------------------------

def test_errors_touch_nothing(playbook, tmp_path):
    src, dst = synced_pair(tmp_path)
    message(os.path.join(src, ALICE), 'new/1700000100.M10P1.mx1,S=200,W=205', mtime=T0 + 100)
    rename(src, ALICE, 'cur/1700000001.M1P1.mx1,S=200,W=205:2,S', 'cur/1700000001.M1P1.mx1,S=200,W=205:2,RS')
    notmail = tmp_path / 'notmail'
    notmail.mkdir()
    (notmail / 'passwd').write_text('root:x:0:0::/root:/bin/sh\n')
    closed = free_port()
    cases = [
        (dict(src=str(tmp_path / 'nosuch'), dest=dst), 'src: %s does not exist' % (tmp_path / 'nosuch')),
        (dict(src=src, dest=str(notmail)), 'dest: %s is not a Maildir and contains no Maildir' % notmail),
        (dict(src=src, dest=os.path.join(dst, ALICE)), 'point both at the same level'),
        (dict(src=src, dest='nosuchhost.invalid:/var/vmail'), 'cannot reach nosuchhost.invalid over SSH'),
        (dict(src=src, dest='root@127.0.0.1:' + dst, ssh_port=closed, timeout=5),
         'cannot reach root@127.0.0.1 port %d over SSH' % closed),
        (dict(src='127.0.0.1:' + src, dest=dst, ssh_port=closed, timeout=5),
         'cannot reach 127.0.0.1 port %d over SSH' % closed),
    ]
    before = (snapshot(src), snapshot(dst), snapshot(str(notmail)))
    results = playbook.tasks([('maildir_sync', args, {}) for args, msg in cases])
    for (args, msg), res in zip(cases, results):
        assert res.get('failed'), (args, res)
        assert msg in res['msg'], (msg, res['msg'])
        assert 'nothing was changed' in res['msg'], res['msg']
        assert not res['changed']
    assert (snapshot(src), snapshot(dst), snapshot(str(notmail))) == before


# --- over SSH ------------------------------------------------------------------------------------------

SSHD_CONFIG = '''\
Port %(port)d
ListenAddress 127.0.0.1
HostKey %(dir)s/host_key
PidFile %(dir)s/sshd.pid
AuthorizedKeysFile %(dir)s/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
LogLevel ERROR
'''


class Sshd(object):
    """sshd on 127.0.0.1:<free port> with its own host key; a client key that may log in as us."""

    def __init__(self, tmp):
        self.dir = str(tmp)
        self.port = free_port()
        self.user = __import__('pwd').getpwuid(os.geteuid()).pw_name
        self.proc = None
        self.made_privsep = False

    def start(self):
        sshd, keygen = '/usr/sbin/sshd', shutil.which('ssh-keygen')
        if not (os.path.exists(sshd) and keygen and shutil.which('ssh') and shutil.which('rsync')):
            pytest.fail('sshd, ssh-keygen, ssh or rsync missing: run scripts/test-host-packages.sh '
                        '(Debian: openssh-server, openssh-client, rsync)')
        if os.geteuid() == 0 and not os.path.isdir('/run/sshd'):
            os.mkdir('/run/sshd', 0o755)  # sshd's privilege separation directory (systemd makes it)
            self.made_privsep = True
        elif os.geteuid() != 0 and not os.path.isdir('/run/sshd'):
            pytest.skip('sshd needs /run/sshd, which only root can create here')
        for name in ('host_key', 'client_key'):
            subprocess.check_call([keygen, '-q', '-t', 'ed25519', '-N', '', '-f', os.path.join(self.dir, name)])
        shutil.copy(os.path.join(self.dir, 'client_key.pub'), os.path.join(self.dir, 'authorized_keys'))
        with open(os.path.join(self.dir, 'host_key.pub')) as f:
            host_key = f.read().split()
        with open(os.path.join(self.dir, 'known_hosts'), 'w') as f:
            f.write('[127.0.0.1]:%d %s %s\n' % (self.port, host_key[0], host_key[1]))
        cfg = os.path.join(self.dir, 'sshd_config')
        with open(cfg, 'w') as f:
            f.write(SSHD_CONFIG % dict(port=self.port, dir=self.dir))
        self.proc = subprocess.Popen([sshd, '-D', '-e', '-f', cfg], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, 'sshd.log'), 'w'), start_new_session=True)
        deadline = time.time() + 15
        while True:
            if self.proc.poll() is not None:
                with open(os.path.join(self.dir, 'sshd.log')) as f:
                    pytest.fail('sshd exited: %s' % f.read()[-2000:])
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return self
            except OSError:
                if time.time() > deadline:
                    pytest.fail('sshd did not listen within 15 s')
                time.sleep(0.1)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        if self.made_privsep:
            try:
                os.rmdir('/run/sshd')
            except OSError:
                pass

    def options(self):
        return dict(ssh_port=self.port, ssh_private_key=os.path.join(self.dir, 'client_key'),
                    ssh_options=['UserKnownHostsFile=%s' % os.path.join(self.dir, 'known_hosts'),
                                 'StrictHostKeyChecking=yes'])

    def remote(self, path):
        return '%s@127.0.0.1:%s' % (self.user, path)


@pytest.fixture(scope='module')
def sshd(tmp_path_factory):
    server = Sshd(tmp_path_factory.mktemp('sshd')).start()
    try:
        yield server
    finally:
        server.stop()


def test_push_over_ssh(playbook, tmp_path, sshd):
    src = mail_root(str(tmp_path / 'src'))
    dst = str(tmp_path / 'backup' / 'vmail')
    first = sync(playbook, src=src, dest=sshd.remote(dst), create_dest=True, **sshd.options())
    assert first['direction'] == 'push' and first['new'] == 6 and messages(dst) == messages(src)
    assert '-p %d' % sshd.port in first['cmd'] and '--mkpath' in first['cmd']

    rename(src, ALICE, 'cur/1700000002.M2P1.mx1,S=200,W=205:2,', 'cur/1700000002.M2P1.mx1,S=200,W=205:2,S')
    rename(src, ALICE, 'new/1700000003.M3P1.mx1,S=200,W=205', 'cur/1700000003.M3P1.mx1,S=200,W=205:2,')
    message(os.path.join(src, ALICE), 'new/1700000100.M10P1.mx1,S=200,W=205', mtime=T0 + 100)
    write(os.path.join(src, ALICE, 'dovecot-uidlist'), '3 V1700000000 N11 G0123\n', T0 + 100)
    write(os.path.join(dst, ALICE, 'dovecot.index'), 'the target Dovecot opened it')
    message(os.path.join(dst, ALICE), 'new/1700000200.M20P2.mx2,S=200,W=205')  # only on the backup
    before = snapshot(dst)
    check = sync(playbook, check_mode=True, src=src, dest=sshd.remote(dst), **sshd.options())
    assert snapshot(dst) == before
    real = sync(playbook, src=src, dest=sshd.remote(dst), bwlimit=10000, **sshd.options())
    assert counts(real) == counts(check)
    assert (real['new'], real['flag_changes'], real['indexes_rebuilt']) == (1, 2, 1)
    got = messages(dst)[ALICE]
    assert len(bases(got)) == len(set(bases(got))) == 6
    assert 'new/1700000200.M20P2.mx2,S=200,W=205' in got
    assert not os.path.exists(os.path.join(dst, ALICE, 'dovecot.index'))
    # the renamed messages were renamed on the target, not sent again
    assert real['bytes_transferred'] == 200 + len('3 V1700000000 N11 G0123\n')
    assert not sync(playbook, src=src, dest=sshd.remote(dst), **sshd.options())['changed']


def test_pull_over_ssh(playbook, tmp_path, sshd):
    src, dst = synced_pair(tmp_path)
    rename(src, 'example.org/bob/Maildir', 'new/1700000006.M6P1.mx1,S=200,W=205',
           'cur/1700000006.M6P1.mx1,S=200,W=205:2,S')
    res = sync(playbook, src=sshd.remote(src), dest=dst, **sshd.options())
    assert res['direction'] == 'pull' and res['flag_changes'] == 1 and res['new'] == 0
    assert messages(dst) == messages(src)


# --- the standalone program ------------------------------------------------------------------------------

def plain_python():
    """Debian's python3 with no site-packages (-I -S): the standard library only."""
    for p in ('/usr/bin/python3', sys.executable):
        if os.path.exists(p):
            return [p, '-I', '-S']
    return [sys.executable, '-I', '-S']  # pragma: no cover


def test_standalone_program(tmp_path):
    src, dst = synced_pair(tmp_path)
    rename(src, ALICE, 'cur/1700000001.M1P1.mx1,S=200,W=205:2,S', 'cur/1700000001.M1P1.mx1,S=200,W=205:2,RS')
    cfg = tmp_path / 'maildir-sync.json'
    cfg.write_text(json.dumps(dict(src=src, dest=dst, excludes=['.Trash/'])))
    check = subprocess.run(plain_python() + [SCRIPT, '--config', str(cfg), '--check'],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert check.returncode == 0, check.stderr
    real = subprocess.run(plain_python() + [SCRIPT, '--config', str(cfg)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert real.returncode == 0, real.stderr
    assert len(real.stdout.splitlines()) == 1
    res = json.loads(real.stdout)
    assert res['flag_changes'] == 1 and res['changed'] and not res['check_mode']
    assert counts(res) == counts(json.loads(check.stdout))
    assert messages(dst) == messages(src)

    cfg.write_text(json.dumps(dict(src=src, dest='nosuchhost.invalid:/var/vmail')))
    bad = subprocess.run(plain_python() + [SCRIPT, '--config', str(cfg)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert bad.returncode == 1 and bad.stdout == ''
    assert bad.stderr.startswith('maildir_sync: error: cannot reach nosuchhost.invalid over SSH')
