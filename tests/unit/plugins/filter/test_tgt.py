# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.filter.tgt import parse_targets, tgt_target_differences

IQN = "iqn.2026-12.local.mailstack:mailstore"
STORE = "/var/lib/mailstack/iscsi/mailstore.img"

# tgtadm --lld iscsi --mode target --op show of tgt 1.0.85 (Debian 12), in a
# lab container, with one initiator logged in and a second ACL entry.
SHOW = """Target 1: iqn.2026-12.local.mailstack:mailstore
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
        I_T nexus: 1
            Initiator: iqn.1993-08.org.debian:01:4c2f1b7d9e0 alias: nfs1
            Connection: 0
                IP Address: 10.231.11.201
    LUN information:
        LUN: 0
            Type: controller
            SCSI ID: IET     00010000
            SCSI SN: beaf10
            Size: 0 MB, Block size: 1
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: null
            Backing store path: None
            Backing store flags:
        LUN: 1
            Type: disk
            SCSI ID: IET     00010001
            SCSI SN: beaf11
            Size: 1074 MB, Block size: 512
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: rdwr
            Backing store path: /var/lib/mailstack/iscsi/mailstore.img
            Backing store flags:
    Account information:
        mailstore
    ACL information:
        10.231.11.201
        fd00::201
"""


def test_parse():
    assert parse_targets(SHOW) == {IQN: {"luns": {0: "None", 1: STORE}, "accounts": ["mailstore"],
                                         "acl": ["10.231.11.201", "fd00::201"]}}


def test_served_as_configured():
    assert tgt_target_differences(SHOW, IQN, STORE, ["fd00::201", "10.231.11.201"], "mailstore") == []


def test_each_difference_is_named():
    assert tgt_target_differences(SHOW, IQN, "/srv/other.img", ["10.231.11.201"], "nfs1") == [
        "LUN 1 is on /var/lib/mailstack/iscsi/mailstore.img, not /srv/other.img",
        "it lets in 10.231.11.201, fd00::201, not 10.231.11.201",
        "its CHAP accounts are mailstore, not nfs1"]


def test_a_missing_target_or_lun():
    assert tgt_target_differences("", IQN, STORE, ["10.0.0.1"], "mailstore") == ["no target %s is running" % IQN]
    bare = "Target 1: %s\n    System information:\n        Driver: iscsi\n    LUN information:\n        LUN: 0\n" \
           "    Account information:\n    ACL information:\n" % IQN
    assert tgt_target_differences(bare, IQN, STORE, ["10.0.0.1"], "mailstore") == [
        "LUN 1 is missing, not %s" % STORE, "it lets in nobody, not 10.0.0.1", "its CHAP accounts are none, not mailstore"]
