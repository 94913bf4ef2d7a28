"""The wiring's registry is the one table of which groups run which role:
playbooks/wire.yml groups every host by the roles the wiring gives it
(mailstack_role_<role>), site.yml's plays run the registry's roles in its
order on those groups, and docs/topologies.md shows the same table."""

from pathlib import Path

import pytest
import yaml

from ansible_collections.mailops.mailstack.plugins.plugin_utils.topology import MAIL_GROUPS
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.registry import (
    ROLE_GROUPS, ROLE_WIRINGS, ROLES, role_default)

REPO = Path(__file__).resolve().parents[2]
PREFIX = "mailstack_role_"


def load(path):
    return yaml.safe_load((REPO / path).read_text())


def play_role(play):
    """The one role a play of site.yml runs (by roles: or include_role)."""
    names = [(r["role"] if isinstance(r, dict) else r) for r in play.get("roles", [])]
    for task in play.get("tasks", []):
        for key in ("ansible.builtin.include_role", "include_role"):
            if key in task:
                names.append(task[key]["name"])
    assert len(names) == 1, "play %r runs %s: one role per play" % (play["name"], names)
    return names[0].split(".")[-1]


def site_plays():
    plays = load("playbooks/site.yml")
    assert plays[0].get("ansible.builtin.import_playbook") == "wire.yml", "site.yml starts with wire.yml"
    return plays[1:]


def test_wire_yml_groups_every_host_by_its_wired_roles():
    tasks = load("playbooks/wire.yml")[0]["tasks"]
    group_by = [t for t in tasks if "ansible.builtin.group_by" in t]
    assert len(group_by) == 1
    assert group_by[0]["ansible.builtin.group_by"]["key"] == PREFIX + "{{ item }}"
    assert group_by[0]["loop"] == "{{ mailstack__wiring.hosts[inventory_hostname].roles }}"
    # After the wiring is applied and checked: a host is grouped only once it can run its roles.
    assert tasks[-1] is group_by[0]


def test_plays_run_the_registrys_roles_in_its_order_on_the_generated_groups():
    order = []
    restricted = {}
    for play in site_plays():
        role = play_role(play)
        if play.get("roles"):
            if not order or order[-1] != role:
                order.append(role)
            group, _sep, restriction = play["hosts"].partition(":&")
            if restriction:
                restricted.setdefault(role, []).append(restriction)
        else:
            group = play["hosts"]
        assert group == PREFIX + role, "play %r targets %r, not the group of its role" % (play["name"], play["hosts"])
    assert order == list(ROLES)
    # A role split over several plays (the database: primary, then replicas)
    # covers its groups, in the registry's order.
    for role, restrictions in restricted.items():
        assert restrictions == list(dict(ROLE_GROUPS)[role]), role


def test_the_dns_play_publishes_the_keys_of_every_host_the_wiring_gives_dkim():
    play = next(p for p in site_plays() if p.get("roles") and play_role(p) == "dns")
    hosts = play["vars"]["mailstack__dkim_hosts"]
    assert "mailstack__wiring.hosts" in hosts and "'contains', 'dkim'" in hosts


def docs_table():
    lines = ["| role | groups |", "|---|---|"]
    for role, groups in ROLE_GROUPS:
        if groups == ("all",):
            where = "every host"
        elif groups == MAIL_GROUPS:
            where = "every mail host (every `mail_*` group; not `lab_outside`)"
        else:
            where = ", ".join("`%s`" % g for g in groups)
        lines.append("| `%s` | %s |" % (role, where))
    return "\n".join(lines) + "\n"


def test_the_docs_show_the_registrys_table():
    table = docs_table()
    assert table in (REPO / "docs" / "topologies.md").read_text(), (
        "docs/topologies.md must hold the registry's table of roles and groups, in play order:\n" + table)


@pytest.mark.parametrize("wiring", ROLE_WIRINGS, ids=ROLES)
def test_a_roles_wiring_names_options_that_exist(wiring):
    spec = load("roles/%s/meta/argument_specs.yml" % wiring.name)["argument_specs"]["main"]["options"]
    assert spec, wiring.name
    for option in list(wiring.address_options) + [option for option, _source in wiring.copies]:
        assert option in spec, "%s: %s is not an option of the role" % (wiring.name, option)
    for option in wiring.reads:
        role_default(option)  # an option of a wired role, with a default
