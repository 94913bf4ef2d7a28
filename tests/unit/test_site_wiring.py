"""site.yml's plays and its pre-flight play agree on which groups run which
role, so the pre-flight validates exactly the roles each host will run."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def load(path):
    return yaml.safe_load((REPO / path).read_text())


def test_role_groups_match_the_plays():
    wiring = load("playbooks/vars/wiring.yml")["mailstack__role_groups"]
    seen = {}
    for play in load("playbooks/site.yml"):
        for role in play.get("roles", []):
            name = (role["role"] if isinstance(role, dict) else role).split(".")[-1]
            groups = ["all" if g == "all" else g for g in play["hosts"].split(":") if not g.startswith("!")]
            seen.setdefault(name, []).extend(groups)
            assert "vars/wiring.yml" in play.get("vars_files", []), play["name"]
    assert seen == wiring


def test_every_wired_role_has_an_argument_spec():
    for role in load("playbooks/vars/wiring.yml")["mailstack__role_groups"]:
        spec = load("roles/%s/meta/argument_specs.yml" % role)
        assert spec["argument_specs"]["main"]["options"], role
