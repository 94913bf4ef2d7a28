"""The example inventories (inventories/examples/<topology>) a site starts from.

Each example is loaded as ansible-playbook loads it (InventoryManager,
VariableManager, and the vault secret of inventories/examples/vault-password.txt,
so that main.yml's "{{ vault_* }}" templates resolve as in a run), then put
through what playbooks/wire.yml checks before any host changes, without
contacting a host (every example host has its mailstack_address, so the
wiring needs no facts):

- the topology the example is named after, and a wiring without errors;
- what each host's roles require set (the wiring's required list: a secret,
  the mail domain, a signature source), by the rules of wire.yml's check;
- the address and network options (mail_address_errors), as the inventory
  sets them and as the wiring computes them;
- every role a host runs, validated against its meta/argument_specs.yml
  (entry point main) with the host's effective options: the inventory's
  value, else the wiring's (and the secrets it copies), else the role's
  default (the spec's default, the same as defaults/main.yml);
- and the first checks of the roles that their specs cannot express (a
  secret whose empty default means "required"), which a run would meet only
  when that role's play starts, after other roles have changed hosts.

The vault layout is checked too: every value of vault.yml is encrypted, and
every secret main.yml sets is a reference to a vault_* variable of the vault.
"""

import re
from pathlib import Path

import pytest
import yaml
from ansible.inventory.manager import InventoryManager
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultSecret, VaultSecretsContext
from ansible.vars.hostvars import HostVars
from ansible.vars.manager import VariableManager

from ansible_collections.mailops.mailstack.plugins.filter.wiring import mail_address_errors
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.registry import role_default
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import rule_holds
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.wire import wire

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "inventories" / "examples"
VAULT_PASSWORD = EXAMPLES / "vault-password.txt"
TOPOLOGIES = ("single", "backup_mx", "nfs_shared", "sharded")

# Options that hold secrets: in an example they come from the vault.
SECRET = re.compile(r"(_password|_des_key|_private_key)$")
VAULT_REFERENCE = re.compile(r"^\{\{ *(vault_[a-z0-9_]+) *\}\}$")

_SPECS = {}


def argument_spec(role):
    """The options of the role's entry point main, as wire.yml reads them."""
    if role not in _SPECS:
        with open(ROOT / "roles" / role / "meta" / "argument_specs.yml") as f:
            _SPECS[role] = yaml.safe_load(f)["argument_specs"]["main"]["options"]
    return _SPECS[role]


def secrets():
    return [("default", VaultSecret(VAULT_PASSWORD.read_bytes().strip()))]


@pytest.fixture(scope="module", autouse=True)
def vault_secrets():
    """The vault secret as ansible-playbook --vault-password-file makes it
    current: encrypted values are decrypted when a template reads them.
    (Ansible sets it once per process; the previous one is put back.)"""
    previous = VaultSecretsContext.current(optional=True)
    VaultSecretsContext._current = VaultSecretsContext(secrets())
    yield
    VaultSecretsContext._current = previous


def load(topology):
    """(groups, hostvars) of an example, as a run sees them."""
    loader = DataLoader()
    loader.set_vault_secrets(secrets())
    inventory = InventoryManager(loader=loader, sources=[str(EXAMPLES / topology)])
    variables = VariableManager(loader=loader, inventory=inventory)
    return inventory.get_groups_dict(), HostVars(inventory=inventory, variable_manager=variables, loader=loader)


class Host(object):
    """One host's options: the inventory's (templated on reading, as in a
    run), else the wiring's and the secrets it copies, else the role's
    default. Values that cannot be resolved are problems, named."""

    def __init__(self, name, hostvars, wired):
        self.name = name
        self.vars = hostvars[name]
        self.wired = wired
        self.problems = []

    def inventory(self, option):
        """(set, value) of the inventory's own setting."""
        if option not in self.vars:
            return False, None
        try:
            return True, self.vars[option]
        except Exception as e:  # an undefined vault_* variable, a broken template
            self.problems.append("%s: %s cannot be resolved: %s" % (self.name, option, e))
            return False, None

    def wired_value(self, option):
        """(set, value) of what wire.yml's set_fact tasks would give the host."""
        if option in self.wired["options"]:
            return True, self.wired["options"][option]
        if option in self.wired["copies"]:
            return self.inventory(self.wired["copies"][option])
        return False, None

    def provided(self, option):
        """(set, value) as the role sees the option when its spec is checked."""
        found, value = self.inventory(option)
        if found:
            return found, value
        return self.wired_value(option)

    def effective(self, option):
        found, value = self.provided(option)
        return value if found else role_default(option)


@pytest.fixture(scope="module", params=TOPOLOGIES)
def example(request):
    groups, hostvars = load(request.param)
    return request.param, groups, hostvars, wire(groups, hostvars)


def test_the_example_makes_its_topology_and_wires_without_errors(example):
    topology, groups, hostvars, wiring = example
    assert wiring["errors"] == [], wiring["errors"]
    assert wiring["topology"] == topology
    # The wiring needs no facts: every host says where it is reached.
    hosts = [h for h in groups["all"] if h != "localhost"]
    assert hosts, "%s: the inventory has no hosts (does hosts.yml parse?)" % topology
    for host in hosts:
        assert "mailstack_address" in hostvars[host], "%s: %s has no mailstack_address" % (topology, host)
    assert sorted(wiring["hosts"]) == sorted(hosts)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_hosts_are_reached_with_sudo_and_the_controller_without(topology):
    """Every host connects by its address as an account that becomes root;
    the implicit localhost, where the maintenance playbooks run, gets none of
    it (group_vars/all reaches it too)."""
    loader = DataLoader()
    loader.set_vault_secrets(secrets())
    inventory = InventoryManager(loader=loader, sources=[str(EXAMPLES / topology)])
    hostvars = HostVars(inventory=inventory, variable_manager=VariableManager(loader=loader, inventory=inventory),
                        loader=loader)
    for name in inventory.get_groups_dict()["all"]:
        assert hostvars[name]["ansible_become"] is True, name
        assert hostvars[name]["ansible_host"] == hostvars[name]["mailstack_address"], name
    inventory.get_host("localhost")  # made on demand, as ansible-playbook does
    localhost = hostvars["localhost"]
    for name in ("ansible_become", "ansible_user", "ansible_host"):
        assert name not in localhost, "%s: the controller's localhost gets %s" % (topology, name)


def test_every_host_passes_the_pre_flight_checks_of_wire_yml(example):
    topology, groups, hostvars, wiring = example
    assert wiring["errors"] == [], wiring["errors"]
    problems = []
    for name, wired in sorted(wiring["hosts"].items()):
        host = Host(name, hostvars, wired)
        # "Check the options each role requires on this host": the host's own
        # variable (the inventory's, or a secret the wiring copied), else
        # empty (the lookup's default), against the rule the wiring names.
        for requirement in wired["required"]:
            found, value = host.provided(requirement["option"])
            if not rule_holds(requirement["rule"], value if found else ""):
                problems.append("%s: %s is unset or breaks the rule '%s' (%s)" % (
                    name, requirement["option"], requirement["rule"], requirement["why"]))
        # "Check the addresses and networks this host's options name": the
        # inventory's values, and the wiring's (checked again by the roles).
        for option in wiring["address_options"]:
            for found, value in (host.inventory(option), host.wired_value(option)):
                if found:
                    problems.extend(mail_address_errors({option: value}, name))
        # "Validate the options of each role this host runs"
        for role in wired["roles"]:
            spec = argument_spec(role)
            provided = {}
            for option in spec:
                found, value = host.provided(option)
                if found:
                    provided[option] = value
            result = ArgumentSpecValidator(spec).validate(provided, validate_role_argument_spec=True)
            problems.extend("%s: role %s: %s" % (name, role, message) for message in result.error_messages)
        problems.extend(host.problems)
    assert problems == [], "%s:\n%s" % (topology, "\n".join(problems))


def _role_checks(host, role):
    """The first checks of a role's tasks that its argument spec cannot
    express (roles/<role>/tasks/main.yml): what a run would refuse only when
    that role's play starts."""
    value = host.effective
    if role == "webmail" and len(str(value("webmail_des_key"))) != 24:
        yield "webmail_des_key must be 24 characters"
    if role == "mail_database" and value("mail_database_mode") == "replica":
        if not value("mail_database_primary"):
            yield "mail_database_primary is empty (replica)"
        if not value("mail_database_replication_password"):
            yield "mail_database_replication_password is empty (replica)"
    if role == "mail_database" and value("mail_database_mode") == "primary" and value("mail_database_mover_hosts") \
            and not value("mail_database_mover_password"):
        yield "mail_database_mover_hosts is set but mail_database_mover_password is empty"
    if role == "dovecot" and value("dovecot_doveadm_listen") and not value("dovecot_doveadm_password"):
        yield "dovecot_doveadm_listen is set but dovecot_doveadm_password is empty"
    if role == "iscsi_target" and not re.match(r"^[A-Za-z0-9._~+=@%^,:/-]{12,64}$",
                                               str(value("iscsi_target_chap_password"))):
        yield "iscsi_target_chap_password must be 12 to 64 characters"
    if role == "nfs_server" and value("nfs_server_store") == "iscsi" and len(
            str(value("nfs_server_iscsi_chap_password"))) < 12:
        yield "nfs_server_iscsi_chap_password (copied from iscsi_target_chap_password) is shorter than 12"
    if role == "content_filter" and not (value("content_filter_clamav_signature_files")
                                         or value("content_filter_clamav_private_mirror")):
        yield "ClamAV has no signature source (content_filter_clamav_signature_files or _private_mirror)"
    if role == "tls" and value("tls_source") == "acme" and not str(value("tls_acme_directory")).startswith("https://"):
        yield "tls_source=acme needs tls_acme_directory, an https:// URL"
    if role == "tls" and value("tls_source") == "provided":
        yield "tls_source=provided: the example cannot hold real certificates"


def test_every_role_would_accept_its_secrets_and_sources(example):
    topology, groups, hostvars, wiring = example
    assert wiring["errors"] == [], wiring["errors"]
    problems = []
    for name, wired in sorted(wiring["hosts"].items()):
        host = Host(name, hostvars, wired)
        for role in wired["roles"]:
            problems.extend("%s: role %s: %s" % (name, role, p) for p in _role_checks(host, role))
        problems.extend(host.problems)
    assert problems == [], "%s:\n%s" % (topology, "\n".join(problems))


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_secrets_live_in_the_vault_encrypted(topology):
    directory = EXAMPLES / topology / "group_vars" / "all"
    # Every value of vault.yml is encrypted (ansible-vault encrypt_string),
    # none readable without the vault password.
    raw = yaml.load((directory / "vault.yml").read_text(), Loader=_VaultTagLoader) or {}
    plain = sorted(name for name, value in raw.items() if not isinstance(value, _Encrypted))
    assert plain == [], "%s: vault.yml holds values that are not encrypted: %s" % (topology, plain)
    main = yaml.safe_load((directory / "main.yml").read_text())
    referenced = set()
    for option, value in main.items():
        match = VAULT_REFERENCE.match(str(value))
        if SECRET.search(option):
            assert match, "%s: %s is a secret: set it to \"{{ vault_%s }}\" and keep the value in vault.yml" % (
                topology, option, option)
        if match:
            referenced.add(match.group(1))
    # Every vault variable is used, and every one used is in the vault.
    assert referenced == set(raw), "%s: main.yml references %s, vault.yml holds %s" % (
        topology, sorted(referenced), sorted(raw))
    assert all(name.startswith("vault_") for name in raw)


class _Encrypted(str):
    """A value tagged !vault."""


class _VaultTagLoader(yaml.SafeLoader):
    """Reads vault.yml without decrypting: !vault values stay _Encrypted."""


_VaultTagLoader.add_constructor("!vault", lambda loader, node: _Encrypted(loader.construct_scalar(node)))
