# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The NFS topology's re-pin decisions (see mail_repin_plan.yml and the
other mail_repin_*.yml); the code is in plugins/plugin_utils/repin.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils import repin


def mail_repin_plan(pinned, server, state='out', counts=None, returning=None):
    return repin.plan(pinned, server, state, counts=counts, returning=returning)


def mail_repin_resume(saved, server, state):
    return repin.resume(saved, server, state)


def mail_repin_fence(plan, server, state, answering, fenced=None):
    return repin.fence_decision(plan, server, state, answering, fenced)


def mail_repin_release_check(servers, reports, fenced=None):
    return repin.release_check(servers, reports, fenced)


def mail_repin_unfence_check(server, fenced, boot_time):
    return repin.unfence_check(server, fenced, boot_time)


def mail_repin_release_wait(flipped_at, now, cache_seconds):
    return repin.release_wait(flipped_at, now, cache_seconds)


def mail_repin_replica_check(results, position, timeout):
    return repin.replica_check(results, position, timeout)


class FilterModule(object):
    def filters(self):
        return {
            'mail_repin_plan': mail_repin_plan,
            'mail_repin_resume': mail_repin_resume,
            'mail_repin_fence': mail_repin_fence,
            'mail_repin_release_check': mail_repin_release_check,
            'mail_repin_unfence_check': mail_repin_unfence_check,
            'mail_repin_release_wait': mail_repin_release_wait,
            'mail_repin_replica_check': mail_repin_replica_check,
        }
