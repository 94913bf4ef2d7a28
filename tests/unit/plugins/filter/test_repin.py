"""The re-pin of the NFS topology: the plan (out spreads evenly, in brings
back only those that left and are still elsewhere), taking up an unfinished
run, whom to fence, what stops the release, when a fenced server may come
back, the wait for the NFS attribute cache, and whether every replica has
applied the flip."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.mailstack.plugins.filter.repin import (
    mail_repin_fence, mail_repin_plan, mail_repin_release_check, mail_repin_release_wait, mail_repin_replica_check,
    mail_repin_resume, mail_repin_unfence_check)

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


# -- the re-pin's discipline (plugins/plugin_utils/repin.py) -----------------

PLAN = [{"email": "a@x", "source": "ms1", "target": "ms2"}, {"email": "c@x", "source": "ms1", "target": "ms3"}]
SAVED = {"server": "ms1", "state": "out", "phase": "flipped", "plan": PLAN, "flipped_at": 100.0}


def test_out_plans_only_onto_the_servers_given():
    # The playbook passes the counts of the servers that answered only.
    assert {m["target"] for m in mail_repin_plan(PINNED, "ms1", "out", {"ms2": 1})} == {"ms2"}


@pytest.mark.parametrize("saved", [{}, dict(SAVED, phase="released")])
def test_nothing_to_take_up(saved):
    assert mail_repin_resume(saved, "ms1", "out") == {}


@pytest.mark.parametrize("phase", ["planned", "fenced", "flipped", "clear"])
def test_an_unfinished_run_of_the_same_request_is_finished_with_its_plan(phase):
    saved = dict(SAVED, phase=phase)
    assert mail_repin_resume(saved, "ms1", "out") == saved


@pytest.mark.parametrize("server, state", [("ms1", "in"), ("ms2", "out")])
def test_another_request_waits_for_the_unfinished_one(server, state):
    with pytest.raises(AnsibleFilterError, match=r"unfinished re-pin of ms1 \(out, phase flipped, 2 user\(s\)\) "
                                                 r"must be finished first: .*mailstack_repin_server=ms1 "
                                                 r"mailstack_repin_state=out"):
        mail_repin_resume(SAVED, server, state)


def test_an_unknown_phase_is_refused():
    with pytest.raises(AnsibleFilterError, match="unknown phase 'copying'"):
        mail_repin_resume(dict(SAVED, phase="copying"), "ms1", "out")


def test_a_source_that_does_not_answer_is_fenced():
    assert mail_repin_fence(PLAN, "ms1", "out", ["ms2", "ms3"], {}) == ["ms1"]
    # Taken out with no users left: fenced all the same when it does not answer.
    assert mail_repin_fence([], "ms1", "out", ["ms2"], {}) == ["ms1"]


def test_a_source_that_answers_or_is_fenced_already_is_not_fenced():
    assert mail_repin_fence(PLAN, "ms1", "out", ["ms1", "ms2", "ms3"], {}) == []
    assert mail_repin_fence(PLAN, "ms1", "out", ["ms2", "ms3"], {"ms1": {"at": 1}}) == []


def test_in_fences_a_current_server_that_does_not_answer():
    back = [{"email": "a@x", "source": "ms2", "target": "ms1"}, {"email": "c@x", "source": "ms3", "target": "ms1"}]
    assert mail_repin_fence(back, "ms1", "in", ["ms1", "ms2"], {}) == ["ms3"]


@pytest.mark.parametrize("plan, state, answering, message", [
    (PLAN, "out", ["ms2"], "pins users to ms3, which does not answer"),
    ([{"email": "a@x", "source": "ms2", "target": "ms1"}], "in", ["ms2"], "ms1 does not answer: it cannot take"),
])
def test_a_target_that_does_not_answer_stops_the_run(plan, state, answering, message):
    with pytest.raises(AnsibleFilterError, match=message):
        mail_repin_fence(plan, "ms1", state, answering, {})


def test_the_release_needs_every_server_clear_or_fenced():
    assert mail_repin_release_check(["ms1", "ms2", "ms3"], {"ms2": {"clear": True}, "ms3": {"clear": True}},
                                    {"ms1": {"at": 1}}) == []


@pytest.mark.parametrize("reports, named, why", [
    ({"ms2": {"clear": True}}, "ms3", "no answer"),
    ({"ms2": {"clear": True}, "ms3": {"clear": False, "msg": "doveadm kick x: exit 75"}}, "ms3", "exit 75"),
    ({"ms2": {"clear": "yes"}, "ms3": {"clear": True}}, "ms2", "no answer"),
])
def test_a_failed_kick_or_a_silent_server_stops_the_release(reports, named, why):
    errors = mail_repin_release_check(["ms1", "ms2", "ms3"], reports, {"ms1": {"at": 1}})
    assert len(errors) == 1 and errors[0].startswith(named + " did not report") and why in errors[0], errors


def test_a_server_not_fenced_must_report_even_when_it_is_the_one_taken_out():
    assert mail_repin_release_check(["ms1", "ms2"], {"ms2": {"clear": True}}, {})[0].startswith("ms1 ")


def test_a_fenced_server_comes_back_only_after_a_restart():
    fenced = {"ms1": {"address": "10.0.0.2", "at": 1000.5}}
    assert mail_repin_unfence_check("ms1", fenced, "1001") == ""
    assert mail_repin_unfence_check("ms2", fenced, None) == ""
    for boot in ("1000", "900", None):
        assert "ms1 was fenced at 1000.5" in mail_repin_unfence_check("ms1", fenced, boot)


@pytest.mark.parametrize("flipped, now, wait", [(100.0, 100.0, 60), (100.0, 130.2, 30), (100.0, 160.0, 0),
                                                (100.0, 500.0, 0), (100.5, 100.0, 61)])
def test_the_release_waits_out_the_attribute_cache_from_the_flip(flipped, now, wait):
    assert mail_repin_release_wait(flipped, now, 60) == wait


def waited(item, waited_=0, position="0-1-9", **result):
    return dict(item=item, query_result=[[{"waited": waited_, "position": position}]], **result)


def test_the_replicas_applied_the_flip_or_are_down():
    results = [waited("db2"), dict(item="db3", failed=True, msg="unable to connect to database: (2003, \"Can't "
                                   "connect to MySQL server on 'localhost' ([Errno 2] No such file or directory)\")")]
    check = mail_repin_replica_check(results, "0-1-9", 10)
    assert check["errors"] == [] and len(check["warnings"]) == 1 and check["warnings"][0].startswith("replica db3 is down")


@pytest.mark.parametrize("result, why", [
    (waited("db2", -1, "0-1-7"), "db2 has not applied it within 10 s (at 0-1-7, 2 transaction(s) behind)"),
    (dict(item="db2", unreachable=True, msg="ssh: connect to host db2: Connection timed out"),
     "db2 does not answer as a replica (its host does not answer"),
    (dict(item="db2", failed=True, msg="Access denied for user 'root'@'localhost'"), "db2 does not answer as a replica"),
])
def test_a_replica_behind_or_whose_host_does_not_answer_stops_the_run(result, why):
    check = mail_repin_replica_check([waited("db3"), result], "0-1-9", 10)
    assert len(check["errors"]) == 1 and why in check["errors"][0] and "db3" not in check["errors"][0], check
