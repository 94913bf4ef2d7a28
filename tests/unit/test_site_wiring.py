"""site.yml's plays and the wiring agree on which groups run which role, so
the pre-flight validates exactly the roles each host will run."""

from pathlib import Path

import yaml

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.registry import ROLE_GROUPS

REPO = Path(__file__).resolve().parents[2]


def load(path):
    return yaml.safe_load((REPO / path).read_text())


def test_role_groups_match_the_plays():
    seen = {}
    for play in load("playbooks/site.yml"):
        for role in play.get("roles", []):
            name = (role["role"] if isinstance(role, dict) else role).split(".")[-1]
            groups = [g for g in play["hosts"].split(":") if not g.startswith("!")]
            seen.setdefault(name, []).extend(groups)
    assert seen == dict((name, list(groups)) for name, groups in ROLE_GROUPS)


def test_every_wired_role_has_an_argument_spec():
    for role, _groups in ROLE_GROUPS:
        spec = load("roles/%s/meta/argument_specs.yml" % role)
        assert spec["argument_specs"]["main"]["options"], role
