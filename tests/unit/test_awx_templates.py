"""The AWX job templates: generated from the argument specs, and current."""

import os

import pytest
import yaml

from mailstack_testlib import load_script

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
awx = load_script("awx_templates")


def load(path):
    with open(os.path.join(ROOT, path)) as f:
        return yaml.safe_load(f)


def test_the_generated_file_is_current():
    with open(os.path.join(ROOT, awx.OUTPUT)) as f:
        assert f.read() == awx.render(), "awx/job_templates.yml is stale: run make awx-templates"


def test_one_template_per_maintenance_playbook_and_site():
    playbooks = sorted(t["playbook"] for t in load(awx.OUTPUT)["mailstack_awx_job_templates"])
    wanted = ["site.yml"] + sorted("playbooks/%s" % p for p in os.listdir(os.path.join(ROOT, "playbooks", "specs"))
                                   if p != "site.yml")
    assert playbooks == sorted(wanted)


def expected(option):
    """What a question must say for an option (independently of the generator's code)."""
    kind, default = option.get("type", "str"), option.get("default")
    want = {"required": bool(option.get("required", False))}
    if option.get("choices") and kind != "list":
        want.update(type="multiplechoice", choices=[str(c) for c in option["choices"]])
    elif kind == "bool":
        want.update(type="multiplechoice", choices=["true", "false"])
    elif kind == "int":
        want["type"] = "integer"
    elif option.get("no_log"):
        want["type"] = ("password", "textarea")
    else:
        want["type"] = "text"
    if default is not None and "{{" not in str(default):
        want["default"] = {"bool": lambda d: "true" if d else "false", "int": int}.get(kind, str)(default)
    return want


def test_every_question_matches_its_spec():
    roles = awx.role_options()
    source = dict((t["name"], t) for t in load(awx.SOURCE)["templates"])
    for template in load(awx.OUTPUT)["mailstack_awx_job_templates"]:
        src = source[template["name"]]
        options = dict(load("playbooks/specs/%s.yml" % src["spec"])["argument_specs"]["main"]["options"])
        options.update((name, roles[name][1]) for name in src.get("role_options", []))
        questions = template["survey_spec"]["spec"]
        assert [q["variable"] for q in questions] == list(options), template["name"]
        for q in questions:
            want = expected(options[q["variable"]])
            for key, value in want.items():
                if isinstance(value, tuple):
                    assert q[key] in value, (template["name"], q)
                else:
                    assert q[key] == value, (template["name"], q["variable"], key)
            secret = bool(options[q["variable"]].get("no_log"))
            assert (q["type"] in ("password", "textarea") and secret) or not secret, q
            assert q["question_description"], q


def test_a_secret_is_a_password_field():
    q = awx.question("x_password", {"type": "str", "no_log": True}, "spec")
    assert q["type"] == "password" and q["default"] == ""


def test_a_list_without_choices_is_refused_naming_the_option():
    with pytest.raises(awx.SpecError, match="roles/x: option tls_names is of type list without choices"):
        awx.question("tls_names", {"type": "list", "elements": "str"}, "roles/x")
