# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/maildir_sync without a second host: option checks, locations,
exclude patterns, parsing of recorded rsync and find output, the rename plan,
the rsync command line, and whole runs against a fake runner that replays what
ssh and rsync answered."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os

import pytest

from ansible_collections.mailops.mailstack.plugins.module_utils import maildir_sync as ms

A = 'example.org/alice/Maildir'

# Recorded with rsync 3.5.0 (Debian 12) and the module's command lines
# (MaildirSync.messages_argv, then rsync_argv) - the two runs' lines together:
# a first copy into an empty directory ...
RSYNC_FIRST = '''\
@@ cd+++++++++ 4096 example.org/
@@ cd+++++++++ 4096 example.org/alice/
@@ cd+++++++++ 4096 example.org/alice/Maildir/
@@ >f+++++++++ 43 example.org/alice/Maildir/dovecot-uidlist
@@ >f+++++++++ 5 example.org/alice/Maildir/subscriptions
@@ cd+++++++++ 4096 example.org/alice/Maildir/.Sent/
@@ >f+++++++++ 0 example.org/alice/Maildir/.Sent/maildirfolder
@@ cd+++++++++ 4096 example.org/alice/Maildir/.Sent/cur/
@@ >f+++++++++ 44 example.org/alice/Maildir/.Sent/cur/1700000003.M4P1.mx1,S=44,W=45:2,S
@@ cd+++++++++ 4096 example.org/alice/Maildir/.Sent/new/
@@ cd+++++++++ 4096 example.org/alice/Maildir/.Sent/tmp/
@@ cd+++++++++ 4096 example.org/alice/Maildir/cur/
@@ >f+++++++++ 120 example.org/alice/Maildir/cur/1700000000.M1P1.mx1,S=120,W=123:2,S
@@ >f+++++++++ 220 example.org/alice/Maildir/cur/1700000001.M2P1.mx1,S=220,W=225:2,
@@ cd+++++++++ 4096 example.org/alice/Maildir/new/
@@ >f+++++++++ 330 example.org/alice/Maildir/new/1700000002.M3P1.mx1,S=330,W=335
@@ cd+++++++++ 4096 example.org/alice/Maildir/tmp/
'''

# ... then, after a flag change (S -> RS), a move from new/ to cur/, one new
# message and one message delivered only to the target, a dry run: the
# messages run copies the one new message (the renames are the plan's), the
# tree run the changed dovecot-uidlist. With delete=true the target-only
# message is the plan's too: the tree run never sees cur/ or new/.
RSYNC_DRY_MESSAGES = '''\
@@ >f+++++++++ 55 example.org/alice/Maildir/new/1700000100.M5P1.mx1,S=55,W=56
'''
RSYNC_DRY_TREE = '''\
@@ >f.st...... 48 example.org/alice/Maildir/dovecot-uidlist
'''

# A push over SSH reports the sender's view ('<'); rsync escapes control characters.
RSYNC_PUSH = '''\
@@ <f+++++++++ 55 example.org/alice/Maildir/new/1700000100.M5P1.mx1,S=55,W=56
@@ <f.st...... 48 example.org/alice/Maildir/dovecot-uidlist
@@ .d...p..... 4096 example.org/alice/Maildir/.Sent/
@@ <f+++++++++ 3 example.org/alice/odd\\#012name
'''

RSYNC_VANISHED_ERR = '''\
file has vanished: "/var/vmail/example.org/alice/Maildir/.Sent/dovecot-uidlist"
rsync warning: some files vanished before they could be transferred (code 24) at main.c(1338) [sender=3.5.0]
'''

# A message named in --files-from that was renamed on the source meanwhile.
RSYNC_LINK_STAT_ERR = '''\
rsync: [sender] link_stat "/var/vmail/example.org/alice/Maildir/new/1700000100.M5P1.mx1,S=55,W=56" failed: \
No such file or directory (2)
rsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1394) [sender=3.5.0]
'''

# LIST_SCRIPT (find over SSH) on the source tree of the recordings above.
FIND_SRC = (
    'd example.org\x00d example.org/alice\x00d example.org/alice/Maildir\x00d example.org/alice/Maildir/new\x00'
    'm example.org/alice/Maildir/new/1700000100.M5P1.mx1,S=55,W=56\x00d example.org/alice/Maildir/cur\x00'
    'm example.org/alice/Maildir/cur/1700000000.M1P1.mx1,S=120,W=123:2,RS\x00'
    'm example.org/alice/Maildir/cur/1700000002.M3P1.mx1,S=330,W=335:2,S\x00'
    'm example.org/alice/Maildir/cur/1700000001.M2P1.mx1,S=220,W=225:2,\x00'
    'f 64 1700000000.0000000000 example.org/alice/Maildir/dovecot.index.cache\x00'
    'd example.org/alice/Maildir/.Sent\x00d example.org/alice/Maildir/.Sent/new\x00'
    'd example.org/alice/Maildir/.Sent/cur\x00m example.org/alice/Maildir/.Sent/cur/1700000003.M4P1.mx1,S=44,W=45:2,S\x00'
    'f 0 1700000000.0000000000 example.org/alice/Maildir/.Sent/maildirfolder\x00'
    'f 64 1700000000.0000000000 example.org/alice/Maildir/dovecot.index\x00'
    'f 48 1700000100.0000000000 example.org/alice/Maildir/dovecot-uidlist\x00'
    'f 5 1700000000.0000000000 example.org/alice/Maildir/subscriptions\x00'
)

M1 = '1700000000.M1P1.mx1,S=120,W=123'
M2 = '1700000001.M2P1.mx1,S=220,W=225'
M3 = '1700000002.M3P1.mx1,S=330,W=335'
M5 = '1700000100.M5P1.mx1,S=55,W=56'
M7 = '1700000200.M7P2.mx2,S=66,W=67'


def opts(**kw):
    o = dict(src='/srv/a', dest='/srv/b')
    o.update(kw)
    return ms.check_options(o)


def tree(maildirs, uidlists=None, index_files=None, path='/x'):
    """A Tree from {folder: [names as 'cur/NAME' or 'new/NAME']}."""
    t = ms.Tree(ms.Location('src', path))
    t.empty = False
    for folder, names in maildirs.items():
        t.maildirs.add(folder)
        t.messages[folder] = (set(n[4:] for n in names if n.startswith('cur/')),
                              set(n[4:] for n in names if n.startswith('new/')))
    t.uidlists = dict(uidlists or {})
    t.index_files = dict(index_files or {})
    return t


# --- options ---------------------------------------------------------------------

def test_defaults():
    o = opts()
    assert o['delete'] is False and o['dovecot_files'] == 'rebuild_indexes' and o['timeout'] == 60
    assert o['excludes'] == [] and o['ssh_options'] == [] and o['flag_separator'] == ':' and o['bwlimit'] == 0


def test_standalone_coercion():
    o = ms.check_options(dict(src='/a', dest='/b', delete='yes', bwlimit='500', excludes=['.Junk/']))
    assert o['delete'] is True and o['bwlimit'] == 500


@pytest.mark.parametrize('raw, fragment', [
    (dict(dest='/b'), 'src: this option is required'),
    (dict(src='/a', dest='/b', nope=1), 'unknown option(s) nope'),
    (dict(src='/a', dest='/b', delete='perhaps'), 'delete: expected a boolean'),
    (dict(src='/a', dest='/b', bwlimit='fast'), 'bwlimit: expected an integer'),
    (dict(src='/a', dest='/b', bwlimit=-1), 'bwlimit: must be 0 or more'),
    (dict(src='/a', dest='/b', timeout=True), 'timeout: expected an integer'),
    (dict(src='/a', dest='/b', dovecot_files='some'), "dovecot_files: 'some' is not one of"),
    (dict(src='/a', dest='/b', excludes='.Junk'), 'excludes: expected a list'),
    (dict(src='/a', dest='/b', excludes=['ok', 3]), 'excludes[1]: expected a string'),
    (dict(src='/a', dest='/b', excludes=['+ keep']), 'excludes[0]'),
    (dict(src='/a', dest='/b', excludes=['  ']), 'excludes[0]: empty pattern'),
    (dict(src='/a', dest='/b', flag_separator='::'), 'flag_separator'),
    (dict(src='/a', dest='/b', flag_separator='a'), 'flag_separator'),
    (dict(src='/a', dest='/b', ssh_options=['-oProxyCommand=x']), 'ssh_options[0]'),
    (dict(src='/a', dest='/b', ssh_port=70000), 'ssh_port: 70000 is not a TCP port'),
    (dict(src='/a', dest='/b', ssh_user='bad user'), "ssh_user: 'bad user'"),
    (dict(src='/a', dest='/b', chown='a:b:c'), 'chown'),
    ([1], 'must be a JSON object'),
])
def test_bad_options(raw, fragment):
    with pytest.raises(ms.SyncError) as e:
        ms.check_options(raw)
    assert fragment in str(e.value)


def test_argument_spec_matches_options():
    spec = ms.argument_spec()
    assert set(spec) == set(ms.OPTION_NAMES)
    assert spec['src'] == dict(type='str', required=True)
    assert spec['dovecot_files']['choices'] == ms.DOVECOT_MODES
    assert spec['excludes'] == dict(type='list', elements='str', default=[])
    assert spec['ssh_private_key'] == dict(type='path')


# --- locations -------------------------------------------------------------------

@pytest.mark.parametrize('value, host, user, path', [
    ('/var/vmail', None, None, '/var/vmail'),
    ('/var/vmail/', None, None, '/var/vmail'),
    ('/var/v:mail', None, None, '/var/v:mail'),
    ('mx1.example.org:/var/vmail', 'mx1.example.org', None, '/var/vmail'),
    ('vmail@mx1:/var/vmail/', 'mx1', 'vmail', '/var/vmail'),
    ('[2001:db8::1]:/var/vmail', '2001:db8::1', None, '/var/vmail'),
    ('root@[::1]:/srv', '::1', 'root', '/srv'),
])
def test_locations(value, host, user, path):
    loc = ms.parse_location('src', value)
    assert (loc.host, loc.user, loc.path) == (host, user, path)


def test_relative_local_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ms.parse_location('dest', 'mail').path == str(tmp_path / 'mail')


def test_rsync_arg_forms():
    assert ms.parse_location('src', '/var/vmail').rsync_arg(trailing_slash=True) == '/var/vmail/'
    assert ms.parse_location('dest', 'u@h:/v/').rsync_arg() == 'u@h:/v'
    assert ms.parse_location('dest', '[::1]:/v').rsync_arg() == '[::1]:/v'
    assert ms.parse_location('dest', 'h:/v', ssh_user='vmail').rsync_arg() == 'vmail@h:/v'


@pytest.mark.parametrize('value, fragment', [
    ('mx1:var/vmail', 'must be absolute'),
    ('rsync://mx1/vmail', 'rsync daemon'),
    ('mx1::vmail', 'rsync daemon'),
    ('-oProxyCommand=x:/v', 'cannot start with "-"'),
    ('', 'empty'),
    ('[::1/v', 'neither a local path nor'),
])
def test_bad_locations(value, fragment):
    with pytest.raises(ms.SyncError) as e:
        ms.parse_location('dest', value)
    assert str(e.value).startswith('dest: ') and fragment in str(e.value)


def test_user_given_twice_differently():
    with pytest.raises(ms.SyncError) as e:
        ms.parse_location('src', 'root@mx1:/v', ssh_user='vmail')
    assert 'give the user once' in str(e.value)


@pytest.mark.parametrize('src, dest, fragment', [
    ('h1:/v', 'h2:/v', 'both remote'),
    ('/srv/mail', '/srv/mail/', 'overlap'),
    ('/srv/mail', '/srv/mail/backup', 'overlap'),
])
def test_bad_pairs(src, dest, fragment):
    with pytest.raises(ms.SyncError) as e:
        ms.MaildirSync(dict(src=src, dest=dest))
    assert fragment in str(e.value)


# --- exclude patterns ----------------------------------------------------------------

@pytest.mark.parametrize('pattern, path, is_dir, expected', [
    ('.Junk/', 'example.org/alice/Maildir/.Junk', True, True),
    ('.Junk/', 'example.org/alice/Maildir/.Junk', False, False),
    ('.Junk', 'example.org/alice/Maildir/.Junk', True, True),
    ('/example.org/bob/', 'example.org/bob', True, True),
    ('/example.org/bob/', 'other.org/example.org/bob', True, False),
    ('example.org/bob', 'other.org/example.org/bob', True, True),
    ('*.bak', 'a/b/c.bak', False, True),
    ('a/*.bak', 'x/a/b/c.bak', False, False),
    ('a/**.bak', 'x/a/b/c.bak', False, True),
    ('user?', 'd/user7', True, True),
    ('user[0-4]', 'd/user7', True, False),
    ('user[!0-4]', 'd/user7', True, True),
    ('/old/***', 'old', True, True),
    ('\\*lit', 'd/*lit', False, True),
    ('\\*lit', 'd/xlit', False, False),
])
def test_excluder(pattern, path, is_dir, expected):
    assert ms.Excluder([pattern]).match(path, is_dir) is expected


# --- rsync output ----------------------------------------------------------------------

def test_parse_items_first_copy():
    items = ms.parse_items(RSYNC_FIRST + 'Number of files: 17\n')
    assert len(items) == 17
    assert items[0] == ('cd+++++++++', 4096, 'example.org/')
    assert items[12] == ('>f+++++++++', 120, A + '/cur/%s:2,S' % M1)


def test_parse_items_escapes_and_deletions():
    items = ms.parse_items(RSYNC_PUSH + '@@ *deleting   0 example.org/alice/Maildir/.Trash/subscriptions\n')
    assert items[3] == ('<f+++++++++', 3, 'example.org/alice/odd\nname')
    assert items[-1] == ('*deleting', 0, A + '/.Trash/subscriptions')


def source_tree():
    return tree({A: ['cur/%s:2,RS' % M1, 'cur/%s:2,' % M2, 'cur/%s:2,S' % M3, 'new/' + M5],
                 A + '/.Sent': ['cur/1700000003.M4P1.mx1,S=44,W=45:2,S']},
                uidlists={A: (48, 1700000100)})


def target_tree():
    return tree({A: ['cur/%s:2,S' % M1, 'cur/%s:2,' % M2, 'new/' + M3, 'cur/%s:2,' % M7],
                 A + '/.Sent': ['cur/1700000003.M4P1.mx1,S=44,W=45:2,S']},
                uidlists={A: (43, 1700000000)},
                index_files={A: ['dovecot.index', 'dovecot.index.cache', 'dovecot.list.index', 'maildirsize']})


@pytest.mark.parametrize('delete', [False, True])
def test_plan_and_counts_from_recorded_dry_run(delete):
    src, dst = source_tree(), target_tree()
    plan = ms.make_plan(src, dst, opts(delete=delete))
    assert sorted(plan.renames) == [(A + '/cur/%s:2,S' % M1, A + '/cur/%s:2,RS' % M1),
                                    (A + '/new/' + M3, A + '/cur/%s:2,S' % M3)]
    assert plan.copies == [A + '/new/' + M5]  # exactly what the messages run is given
    assert plan.deletions == ([A + '/cur/%s:2,' % M7] if delete else [])
    c = ms.count_items(ms.parse_items(RSYNC_DRY_MESSAGES + RSYNC_DRY_TREE), src, dst)
    assert (c['new'], c['other_files'], c['updated']) == (1, 1, 0)
    assert c['bytes_transferred'] == 55 + 48  # the renamed messages are not sent


def test_counts_push_and_directory_attributes():
    src, dst = source_tree(), target_tree()
    c = ms.count_items(ms.parse_items(RSYNC_PUSH), src, dst)
    assert (c['new'], c['other_files'], c['dirs_created']) == (1, 3, 0)


def test_counts_first_copy_and_directories_named_by_both_runs():
    src = source_tree()
    # in a dry run both runs report a new directory: it counts once
    c = ms.count_items(ms.parse_items(RSYNC_FIRST + RSYNC_FIRST), src, ms.Tree(ms.Location('dest', '/d')))
    assert (c['new'], c['dirs_created'], c['other_files']) == (4, 10, 3)


# --- listings ----------------------------------------------------------------------------

def test_parse_find_listing():
    t = ms.parse_listing(ms.Location('src', '/var/vmail'), FIND_SRC, ms.Excluder([]))
    assert t.maildirs == {A, A + '/.Sent'}
    assert t.messages[A] == ({'%s:2,RS' % M1, '%s:2,' % M2, '%s:2,S' % M3}, {M5})
    assert t.uidlists == {A: (48, 1700000100)}
    assert sorted(t.index_files[A]) == ['dovecot.index', 'dovecot.index.cache']
    assert t.message_count() == 5 and not t.empty and not t.is_maildir_root()


def test_parse_find_listing_with_excludes():
    t = ms.parse_listing(ms.Location('src', '/v'), FIND_SRC, ms.Excluder(['.Sent/', '*,S=55,*']))
    assert t.maildirs == {A}
    assert t.messages[A][1] == set()


def make_maildir(root, folder, names, files=()):
    base = os.path.join(str(root), folder) if folder else str(root)
    for sub in ('cur', 'new', 'tmp'):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    for n in names:
        with open(os.path.join(base, n), 'w') as f:
            f.write('message\n')
    for n in files:
        with open(os.path.join(base, n), 'w') as f:
            f.write('data\n')


def test_local_listing_equals_find_listing(tmp_path):
    make_maildir(tmp_path, 'd/u/Maildir', ['cur/1.a:2,S', 'new/2.b', 'tmp/3.c', 'cur/.4.tmp-rsync'],
                 ['dovecot-uidlist', 'dovecot.index', 'dovecot.list.index.log', 'maildirsize', 'subscriptions'])
    make_maildir(tmp_path, 'd/u/Maildir/.Sent', ['cur/5.e:2,RS'], ['maildirfolder', 'dovecot.index.cache'])
    make_maildir(tmp_path, 'd/u/Maildir/.Junk', ['new/6.f'])
    os.makedirs(str(tmp_path / 'd' / 'notmail'))
    excl = ms.Excluder(['.Junk/'])
    local = ms.list_local(ms.Location('src', str(tmp_path)), excl)
    import subprocess
    out = subprocess.run(['sh', '-c', ms.list_script(str(tmp_path))], stdout=subprocess.PIPE, check=True).stdout
    remote = ms.parse_listing(ms.Location('src', str(tmp_path)), out.decode(), excl)
    for attr in ('maildirs', 'messages', 'uidlists'):
        assert getattr(local, attr) == getattr(remote, attr), attr
    assert dict((k, sorted(v)) for k, v in local.index_files.items()) == \
        dict((k, sorted(v)) for k, v in remote.index_files.items())
    assert local.messages['d/u/Maildir'] == ({'1.a:2,S'}, {'2.b'})
    assert 'd/u/Maildir/.Junk' not in local.maildirs


def test_local_listing_missing_and_not_a_directory(tmp_path):
    assert not ms.list_local(ms.Location('src', str(tmp_path / 'none')), ms.Excluder([])).exists
    (tmp_path / 'file').write_text('x')
    with pytest.raises(ms.SyncError) as e:
        ms.list_local(ms.Location('src', str(tmp_path / 'file')), ms.Excluder([]))
    assert 'src: ' in str(e.value) and 'is not a directory' in str(e.value)


# --- the plan ------------------------------------------------------------------------------------

def test_plan_flag_rename_new_to_cur_target_only_and_uidlist():
    plan = ms.make_plan(source_tree(), target_tree(), opts())
    assert len(plan.renames) == 2 and plan.duplicates == []
    # the target-only M7 stays, it is in no list
    assert not [p for p in plan.copies + plan.deletions + plan.duplicates if M7 in p]
    # the uidlist changes: the folder's indexes and the mailbox's list index and quota go
    assert plan.index_removals == [A + '/dovecot.index', A + '/dovecot.index.cache', A + '/dovecot.list.index',
                                   A + '/maildirsize']


@pytest.mark.parametrize('mode, removals', [('exclude_indexes', 0), ('exclude_all', 0), ('copy', 0),
                                            ('rebuild_indexes', 4)])
def test_plan_index_modes(mode, removals):
    plan = ms.make_plan(source_tree(), target_tree(), opts(dovecot_files=mode))
    assert len(plan.index_removals) == removals
    assert bool(plan.uidlist_changed) is (mode != 'exclude_all')


def test_plan_duplicates_left_by_a_plain_rsync():
    src = tree({'': ['cur/1.x:2,RS', 'cur/2.y:2,S']})
    dst = tree({'': ['cur/1.x:2,RS', 'cur/1.x:2,S', 'new/1.x', 'cur/2.y:2,', 'new/2.y', 'cur/3.z:2,']})
    plan = ms.make_plan(src, dst, opts())
    assert sorted(plan.duplicates) == ['cur/1.x:2,S', 'new/1.x', 'new/2.y']
    assert plan.renames == [('cur/2.y:2,', 'cur/2.y:2,S')]
    assert plan.copies == [] and plan.deletions == []  # 3.z is target-only: kept


def test_plan_other_separator():
    src = tree({'': ['cur/1.x;2,RS']})
    dst = tree({'': ['cur/1.x;2,S']})
    assert ms.make_plan(src, dst, opts(flag_separator=';')).renames == [('cur/1.x;2,S', 'cur/1.x;2,RS')]
    assert ms.make_plan(src, dst, opts()).renames == []


def test_plan_nested_folders_top_mailbox():
    src = tree({'u/Maildir': ['new/1.a'], 'u/Maildir/.Sent': ['new/2.b', 'new/3.c']})
    dst = tree({'u/Maildir': ['new/1.a'], 'u/Maildir/.Sent': ['new/2.b']},
               index_files={'u/Maildir': ['maildirsize', 'dovecot.index'], 'u/Maildir/.Sent': ['dovecot.index']})
    plan = ms.make_plan(src, dst, opts())
    assert plan.index_removals == ['u/Maildir/maildirsize']  # quota of the mailbox; no uidlist change
    assert plan.copies == ['u/Maildir/.Sent/new/3.c']


def test_plan_new_folder_and_delete_of_a_folder_the_source_dropped():
    src = tree({'u/Maildir': ['new/1.a'], 'u/Maildir/.Work': []})
    dst = tree({'u/Maildir': ['new/1.a', 'cur/9.z:2,S'], 'u/Maildir/.Old': ['cur/5.e:2,S', 'new/6.f']})
    plan = ms.make_plan(src, dst, opts())
    # an empty new folder still gets its cur/ and new/; nothing is removed without delete
    assert plan.new_dirs == ['u/Maildir/.Work/cur', 'u/Maildir/.Work/new']
    assert plan.copies == [] and plan.deletions == []
    plan = ms.make_plan(src, dst, opts(delete=True))
    assert plan.deletions == ['u/Maildir/cur/9.z:2,S', 'u/Maildir/.Old/cur/5.e:2,S', 'u/Maildir/.Old/new/6.f']


# --- the rsync command line ---------------------------------------------------------------------------

def which(name):
    return '/usr/bin/' + name


def test_rsync_argv_local_defaults():
    s = ms.MaildirSync(dict(src='/srv/a', dest='/srv/b'), which=which)
    argv = s.rsync_argv()
    assert argv[:2] == ['/usr/bin/rsync', '--archive'] and argv[-2:] == ['/srv/a/', '/srv/b']
    for opt in ('--omit-dir-times', '--numeric-ids', '--timeout=60', '--exclude=tmp/*', '--exclude=dovecot.index*',
                '--exclude=dovecot.list.index*', '--exclude=maildirsize', '--exclude=dovecot*.lock'):
        assert opt in argv
    for opt in ('--delete-delay', '--dry-run', '--rsh', '--bwlimit', '--mkpath'):
        assert not [a for a in argv if a.startswith(opt)]
    assert '--exclude=dovecot-uidlist' not in argv
    # the tree run never looks into cur/ or new/: the messages run copies the planned messages
    assert argv.index('--exclude=cur/') < argv.index('/srv/a/') and '--exclude=new/' in argv
    margv = s.messages_argv()
    assert margv[-4:] == ['--from0', '--files-from=-', '/srv/a/', '/srv/b']
    assert not [a for a in margv if a.startswith(('--exclude', '--delete'))]


def test_rsync_argv_push_with_everything():
    s = ms.MaildirSync(dict(src='/var/vmail', dest='mx2.example.org:/var/vmail', ssh_user='vmail', ssh_port=2222,
                            ssh_private_key='/etc/k ey', ssh_options=['StrictHostKeyChecking=accept-new'],
                            bwlimit=5000, compress=True, delete=True, chown='vmail:vmail', rsync_path='sudo rsync',
                            timeout=0, excludes=['.Junk/'], dovecot_files='exclude_all'),
                       check_mode=True, which=which)
    argv = s.rsync_argv(dest_missing=True)
    for opt in ('--dry-run', '--delete-delay', '--bwlimit=5000', '--compress', '--chown=vmail:vmail', '--mkpath',
                '--rsync-path=sudo rsync', '--exclude=.Junk/', '--exclude=dovecot*', '--exclude=maildirsize'):
        assert opt in argv
    assert not [a for a in argv if a.startswith('--timeout')]
    rsh = argv[argv.index('--rsh') + 1]
    assert rsh == ("/usr/bin/ssh -o BatchMode=yes -p 2222 -i '/etc/k ey' -o StrictHostKeyChecking=accept-new")
    assert argv[-2:] == ['/var/vmail/', 'vmail@mx2.example.org:/var/vmail']
    assert s.direction == 'push'
    margv = s.messages_argv(dest_missing=True)
    for opt in ('--dry-run', '--bwlimit=5000', '--compress', '--chown=vmail:vmail', '--mkpath', '--rsh',
                '--rsync-path=sudo rsync', '--files-from=-'):
        assert opt in margv
    assert '--delete-delay' not in margv


def test_copy_mode_excludes_only_tmp_and_locks():
    s = ms.MaildirSync(dict(src='/a', dest='/b', dovecot_files='copy'), which=which)
    assert s.excludes() == ['tmp/*', 'dovecot*.lock']


def test_missing_programs():
    s = ms.MaildirSync(dict(src='/a', dest='h:/b'), which=lambda n: None)
    with pytest.raises(ms.SyncError) as e:
        s.rsync_argv()
    assert 'rsync is not installed' in str(e.value)
    with pytest.raises(ms.SyncError) as e:
        s.ssh_base()
    assert 'ssh is not installed' in str(e.value) and 'h' in str(e.value)


# --- whole runs against recorded answers -------------------------------------------------------------

class FakeRunner(object):
    """Answers commands by their kind: the find listing, the remote sh, rsync."""

    def __init__(self, **answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, data=None):
        kind = 'rsync' if argv[0].endswith('rsync') else ('apply' if argv[-1] == 'sh -s' else 'list')
        if kind == 'rsync' and '--files-from=-' in argv:
            kind = 'messages'
            self.calls.append((kind, argv, data))
            return self.answers.get('messages', (0, '', ''))
        self.calls.append((kind, argv, data))
        return self.answers[kind]


def local_source(tmp_path):
    root = tmp_path / 'src'
    make_maildir(root, A, ['cur/%s:2,RS' % M1, 'cur/%s:2,' % M2, 'cur/%s:2,S' % M3, 'new/' + M5], ['dovecot-uidlist'])
    make_maildir(root, A + '/.Sent', ['cur/1700000003.M4P1.mx1,S=44,W=45:2,S'])
    return str(root)


TARGET_FIND = (
    'd example.org\x00d example.org/alice\x00d %(a)s\x00d %(a)s/cur\x00d %(a)s/new\x00d %(a)s/.Sent\x00'
    'd %(a)s/.Sent/cur\x00d %(a)s/.Sent/new\x00'
    'm %(a)s/cur/%(m1)s:2,S\x00m %(a)s/cur/%(m2)s:2,\x00m %(a)s/new/%(m3)s\x00m %(a)s/cur/%(m7)s:2,\x00'
    'm %(a)s/.Sent/cur/1700000003.M4P1.mx1,S=44,W=45:2,S\x00'
    'f 43 1700000000.0 %(a)s/dovecot-uidlist\x00f 64 1700000000.0 %(a)s/dovecot.index\x00'
) % dict(a=A, m1=M1, m2=M2, m3=M3, m7=M7)


def test_push_renames_on_the_target_before_rsync(tmp_path):
    fake = FakeRunner(list=(0, TARGET_FIND, ''), apply=(0, '', ''), rsync=(0, RSYNC_PUSH, ''))
    r = ms.sync(dict(src=local_source(tmp_path), dest='mx2:/var/vmail', ssh_user='root'), runner=fake, which=which)
    assert [c[0] for c in fake.calls] == ['list', 'apply', 'messages', 'rsync']
    assert fake.calls[2][2] == A + '/new/%s\0' % M5  # the one message the target lacks
    script = fake.calls[1][2]
    assert "cd -- /var/vmail" in script
    assert "r %s/cur/%s:2,S %s/cur/%s:2,RS" % (A, M1, A, M1) in script.replace("'", '')
    assert "rm -f -- %s/dovecot.index" % A in script
    assert fake.calls[1][1][-3:] == ['root', 'mx2', 'sh -s'] or fake.calls[1][1][-2:] == ['mx2', 'sh -s']
    assert r['changed'] and r['flag_changes'] == 2 and r['new'] == 1 and r['direction'] == 'push'
    assert r['indexes_rebuilt'] == 1 and r['unchanged'] == 2 and r['messages_source'] == 5


def test_check_mode_runs_no_remote_changes(tmp_path):
    fake = FakeRunner(list=(0, TARGET_FIND, ''), messages=(0, RSYNC_DRY_MESSAGES, ''), rsync=(0, RSYNC_DRY_TREE, ''))
    r = ms.sync(dict(src=local_source(tmp_path), dest='mx2:/var/vmail', delete=True), check_mode=True, runner=fake,
                which=which)
    assert [c[0] for c in fake.calls] == ['list', 'messages', 'rsync']
    assert '--dry-run' in fake.calls[1][1] and '--dry-run' in fake.calls[2][1]
    assert r['flag_changes'] == 2 and r['new'] == 1 and r['deleted'] == 1 and r['check_mode']


def test_unreachable_peer_stops_before_anything(tmp_path):
    fake = FakeRunner(list=(255, '', 'ssh: Could not resolve hostname nosuchhost.invalid: Name or service not '
                                     'known\r\n'))
    with pytest.raises(ms.SyncError) as e:
        ms.sync(dict(src=local_source(tmp_path), dest='nosuchhost.invalid:/var/vmail', ssh_port=2222),
                runner=fake, which=which)
    assert 'cannot reach nosuchhost.invalid port 2222 over SSH' in str(e.value)
    assert 'Could not resolve hostname' in str(e.value) and 'nothing was changed' in str(e.value)
    assert [c[0] for c in fake.calls] == ['list']


@pytest.mark.parametrize('rc, create, fragment', [
    (ms.REMOTE_MISSING, False, 'dest: /var/vmail on mx2 does not exist; set create_dest=true'),
    (ms.REMOTE_NOT_DIR, True, 'dest: /var/vmail on mx2 is not a directory'),
    (1, False, "dest: cannot list /var/vmail on mx2 (rc 1): find: './x': Permission denied"),
])
def test_remote_target_problems(tmp_path, rc, create, fragment):
    fake = FakeRunner(list=(rc, '', "find: './x': Permission denied"))
    with pytest.raises(ms.SyncError) as e:
        ms.sync(dict(src=local_source(tmp_path), dest='mx2:/var/vmail', create_dest=create), runner=fake, which=which)
    assert fragment in str(e.value)
    assert [c[0] for c in fake.calls] == ['list']


def test_create_dest_on_a_missing_remote_target(tmp_path):
    fake = FakeRunner(list=(ms.REMOTE_MISSING, '', ''), rsync=(0, RSYNC_FIRST, ''))
    r = ms.sync(dict(src=local_source(tmp_path), dest='mx2:/var/vmail', create_dest=True), runner=fake, which=which)
    assert [c[0] for c in fake.calls] == ['list', 'messages', 'rsync']
    assert '--mkpath' in fake.calls[1][1] and '--mkpath' in fake.calls[2][1]
    assert r['new'] == 4 and r['dirs_created'] == 10


def test_pull_lists_the_source_over_ssh(tmp_path):
    dest = tmp_path / 'dst'
    make_maildir(dest, A, ['cur/%s:2,S' % M1])
    fake = FakeRunner(list=(0, FIND_SRC, ''), rsync=(0, '', ''))
    r = ms.sync(dict(src='mx1:/var/vmail', dest=str(dest)), runner=fake, which=which)
    assert r['direction'] == 'pull' and r['flag_changes'] == 1
    assert os.path.exists(str(dest / A / 'cur' / ('%s:2,RS' % M1)))  # renamed locally before rsync
    assert fake.calls[-1][1][-2:] == ['mx1:/var/vmail/', str(dest)]


def test_vanished_files_are_a_warning(tmp_path):
    fake = FakeRunner(list=(0, TARGET_FIND, ''), apply=(0, '', ''), messages=(23, '', RSYNC_LINK_STAT_ERR),
                      rsync=(24, RSYNC_PUSH, RSYNC_VANISHED_ERR))
    r = ms.sync(dict(src=local_source(tmp_path), dest='mx2:/var/vmail'), runner=fake, which=which)
    assert r['rc'] == 24 and r['vanished'] == 2 and 'vanished' in r['warnings'][0]


def test_partial_transfer_for_another_reason_is_a_failure(tmp_path):
    err = RSYNC_LINK_STAT_ERR.replace('rsync error:', 'rsync: [receiver] mkstemp "x" failed: Permission denied (13)\n'
                                      'rsync error:')
    fake = FakeRunner(list=(0, TARGET_FIND, ''), apply=(0, '', ''), messages=(23, '', err), rsync=(0, '', ''))
    with pytest.raises(ms.SyncError) as e:
        ms.sync(dict(src=local_source(tmp_path), dest='mx2:/var/vmail'), runner=fake, which=which)
    assert 'rsync failed with rc 23' in str(e.value) and 'Permission denied' in str(e.value)


def test_rsync_failure_after_renames_says_so(tmp_path):
    fake = FakeRunner(list=(0, TARGET_FIND, ''), apply=(0, '', ''),
                      rsync=(12, '', 'rsync: connection unexpectedly closed\nrsync error: error in rsync protocol '
                                     'data stream (code 12)'))
    with pytest.raises(ms.SyncError) as e:
        ms.sync(dict(src=local_source(tmp_path), dest='mx2:/var/vmail'), runner=fake, which=which)
    assert 'rsync failed with rc 12 (SSH to mx2)' in str(e.value)
    assert 'stale target copies were renamed' in str(e.value)
    assert e.value.result['changed'] is True and e.value.result['rc'] == 12


def test_remote_rename_of_a_vanished_file_is_a_warning(tmp_path):
    fake = FakeRunner(list=(0, TARGET_FIND, ''), apply=(0, 'gone: %s/new/%s\n' % (A, M3), ''), rsync=(0, '', ''))
    r = ms.sync(dict(src=local_source(tmp_path), dest='mx2:/var/vmail'), runner=fake, which=which)
    assert 'disappeared from the target' in r['warnings'][0]


# --- validation ------------------------------------------------------------------------------------------

def test_validation(tmp_path):
    src = local_source(tmp_path)
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'etc').mkdir()
    (tmp_path / 'etc' / 'passwd').write_text('root:x:0:0\n')
    one = tmp_path / 'one'
    make_maildir(one, '', ['new/1.a'])

    def err(**kw):
        with pytest.raises(ms.SyncError) as e:
            ms.sync(kw, which=which, runner=FakeRunner())
        return str(e.value)

    assert err(src=str(tmp_path / 'none'), dest=str(tmp_path / 'empty')).startswith('src: ')
    assert 'is not a Maildir and contains no Maildir' in err(src=str(tmp_path / 'etc'), dest=str(tmp_path / 'empty'))
    assert err(src=src, dest=str(tmp_path / 'empty')).startswith('dest: %s is empty' % (tmp_path / 'empty'))
    assert 'does not exist' in err(src=src, dest=str(tmp_path / 'new'))
    assert 'refusing to sync mail into it' in err(src=src, dest=str(tmp_path / 'etc'))
    assert 'same level' in err(src=src, dest=str(one))
    assert 'same level' in err(src=str(one), dest=src)
    assert os.listdir(str(tmp_path / 'etc')) == ['passwd'] and os.listdir(str(tmp_path / 'empty')) == []


def test_empty_source_is_nothing_to_copy_unless_delete(tmp_path):
    """A new server's mail root, before its first delivery: no error, no rsync, nothing changed."""
    (tmp_path / 'fresh').mkdir()
    (tmp_path / 'etc').mkdir()
    (tmp_path / 'etc' / 'passwd').write_text('root:x:0:0\n')
    dst = local_source(tmp_path)
    fake = FakeRunner()
    r = ms.sync(dict(src=str(tmp_path / 'fresh'), dest=dst), runner=fake, which=which)
    assert not r['changed'] and r['new'] == 0 and r['messages_source'] == 0
    assert 'is empty (no mailbox yet)' in r['warnings'][0]
    assert fake.calls == []
    with pytest.raises(ms.SyncError) as e:  # an empty source must not wipe the target
        ms.sync(dict(src=str(tmp_path / 'fresh'), dest=dst, delete=True), runner=fake, which=which)
    assert 'is not a Maildir and contains no Maildir' in str(e.value)
    with pytest.raises(ms.SyncError) as e:  # a wrong target is still reported
        ms.sync(dict(src=str(tmp_path / 'fresh'), dest=str(tmp_path / 'etc')), runner=fake, which=which)
    assert 'refusing to sync mail into it' in str(e.value)


# --- the standalone program ---------------------------------------------------------------------------------

def test_main_config_errors(tmp_path, capsys):
    assert ms.main(['--config', str(tmp_path / 'none.json')]) == 2
    assert 'cannot read' in capsys.readouterr().err
    bad = tmp_path / 'bad.json'
    bad.write_text('{src: 1')
    assert ms.main(['--config', str(bad)]) == 2
    assert 'not valid JSON' in capsys.readouterr().err
    cfg = tmp_path / 'c.json'
    cfg.write_text(json.dumps(dict(src='/a', dest='/b', delete='maybe')))
    assert ms.main(['--config', str(cfg)]) == 2
    assert 'delete: expected a boolean' in capsys.readouterr().err


def test_main_sync_error_and_success(tmp_path, capsys):
    cfg = tmp_path / 'c.json'
    cfg.write_text(json.dumps(dict(src=str(tmp_path / 'none'), dest=str(tmp_path / 'd'))))
    assert ms.main(['--config', str(cfg)]) == 1
    assert capsys.readouterr().err.startswith('maildir_sync: error: src: ')
    src = local_source(tmp_path)
    cfg.write_text(json.dumps(dict(src=src, dest=str(tmp_path / 'dst'), create_dest=True)))
    assert ms.main(['--config', str(cfg), '--check']) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    res = json.loads(out[0])
    assert res['check_mode'] and res['new'] == 5 and not os.path.exists(str(tmp_path / 'dst'))
