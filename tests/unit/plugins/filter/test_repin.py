"""The re-pin plan of the NFS topology: out spreads evenly, in brings back
only those that left and are still elsewhere."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.mailstack.plugins.filter.repin import mail_repin_plan

PINNED = {"a@x": "ms1", "b@x": "ms2", "c@x": "ms1", "d@x": "ms1", "e@x": "ms3"}


def test_out_spreads_to_the_least_loaded_active_servers():
    plan = mail_repin_plan(PINNED, "ms1", "out", {"ms1": 3, "ms2": 1, "ms3": 1})
    assert plan == [{"email": "a@x", "source": "ms1", "target": "ms2"},
                    {"email": "c@x", "source": "ms1", "target": "ms3"},
                    {"email": "d@x", "source": "ms1", "target": "ms2"}]


def test_out_of_a_server_without_users_changes_nothing():
    assert mail_repin_plan({"b@x": "ms2"}, "ms1", "out", {}) == []


def test_out_refuses_when_no_other_server_is_active():
    with pytest.raises(AnsibleFilterError, match="ms1 has 3 user.*no other mailbox server is active"):
        mail_repin_plan(PINNED, "ms1", "out", {"ms1": 3})


def test_in_brings_back_those_still_elsewhere():
    now = {"a@x": "ms2", "c@x": "ms1", "d@x": "ms3", "b@x": "ms2"}
    # c is back already, z was removed, b never left ms1's list.
    assert mail_repin_plan(now, "ms1", "in", returning=["d@x", "a@x", "c@x", "z@x", "a@x"]) == [
        {"email": "a@x", "source": "ms2", "target": "ms1"},
        {"email": "d@x", "source": "ms3", "target": "ms1"}]


@pytest.mark.parametrize("args, message", [
    ((["a@x"], "ms1"), "expects {email: server}, got list"),
    ((PINNED, "ms1", "in"), "state in needs the list of returning users, got NoneType"),
    ((PINNED, "ms1", "sideways", {}), "state must be 'out' or 'in', not 'sideways'"),
])
def test_bad_input_is_named(args, message):
    with pytest.raises(AnsibleFilterError, match=message.replace("(", r"\(").replace("{", r"\{")):
        mail_repin_plan(*args)
