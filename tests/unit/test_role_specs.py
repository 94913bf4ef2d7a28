"""Every role documents every variable it reads, and the documents agree.

- each variable in defaults/main.yml is an option of meta/argument_specs.yml
  (entry point `main`; an internal role such as `_common`, whose task files
  other roles include and whose `main` only refuses to run, documents each
  in the entry point of the task file that reads it) and the other way round;
- each option's `default` is exactly the value in defaults/main.yml;
- each option has a type and a description;
- public variables carry the role's prefix, internal ones in vars/ the
  role's prefix and a double underscore.
"""

from pathlib import Path

import pytest
import yaml

ROLES = sorted(p for p in (Path(__file__).resolve().parents[2] / "roles").iterdir() if p.is_dir())


def load(path):
    with open(path) as f:
        return yaml.safe_load(f) or {}


@pytest.fixture(params=ROLES, ids=[r.name for r in ROLES])
def role(request):
    return request.param


def test_every_role_is_wired_or_internal():
    # The parametrised tests below see every role directory: they are the
    # roles site.yml runs (the wiring's table) and the internal ones.
    from ansible_collections.mailops.mailstack.plugins.filter.wiring import ROLES as WIRED
    assert sorted(r.name for r in ROLES) == sorted(list(WIRED) + ["_common"])


def options(role):
    """Every option of every entry point of the role."""
    found = {}
    for entry in load(role / "meta" / "argument_specs.yml")["argument_specs"].values():
        found.update(entry.get("options", {}))
    return found


def test_defaults_and_specs_agree(role):
    defaults = load(role / "defaults" / "main.yml")
    specs = options(role)
    assert sorted(defaults) == sorted(k for k, v in specs.items() if "default" in v), (
        "%s: defaults/main.yml and meta/argument_specs.yml name different variables" % role.name)
    for name, value in defaults.items():
        assert specs[name]["default"] == value, "%s: %s default differs from argument_specs" % (role.name, name)


def test_options_are_typed_and_described(role):
    entries = load(role / "meta" / "argument_specs.yml")["argument_specs"]
    assert "main" in entries or role.name.startswith("_"), "%s: no entry point main" % role.name
    for entry in entries.values():
        assert entry.get("short_description"), role.name
    for name, opt in options(role).items():
        assert opt.get("type"), "%s: option %s has no type" % (role.name, name)
        assert opt.get("description"), "%s: option %s has no description" % (role.name, name)
        if "default" not in opt:
            assert opt.get("required"), "%s: option %s has neither a default nor required" % (role.name, name)


def test_variables_are_prefixed(role):
    prefix = role.name + "_"
    for name in load(role / "defaults" / "main.yml"):
        assert name.startswith(prefix), "%s: public variable %s lacks prefix %s" % (role.name, name, prefix)
    internal = role / "vars" / "main.yml"
    if internal.exists():
        for name in load(internal):
            assert name.startswith(role.name + "__"), (
                "%s: internal variable %s in vars/ lacks prefix %s__" % (role.name, name, role.name))
