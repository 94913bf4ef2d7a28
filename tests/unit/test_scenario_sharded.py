"""The sharded Molecule scenario's inventory, as Molecule makes it from
extensions/molecule/sharded/molecule.yml (over config.yml), put through the
wiring without a lab (each host given an address as site.yml's facts would):
its mail database is a three-node Galera cluster on hosts the lab already
has (issue 28, step G; docs/design/no-spof-plan.md 3).

- ns1, proxy1 and ms2 are the nodes, in that order (ns1 bootstraps a new
  cluster), each with its own address, the others' in the inventory's order
  (Molecule writes each group's hosts sorted by name: mail_db is made of
  ordered child groups, one node each, for that);
- the lab's memory settings (64M buffer pool, 64M gcache) reach the role's
  rendered configuration through its options, which its argument spec takes;
- the check mode run limited to one host (MAILSTACK_CHECK_LIMIT) runs on a
  node, which then meets the cluster that exists;
- converge.yml provisions the lab's users on one node, the first.

The scenario itself (tests/test_galera.py there) proves the rest on the
converged lab.
"""

import os
import sys
from pathlib import Path

import pytest
import yaml
from ansible.inventory.manager import InventoryManager
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.parsing.dataloader import DataLoader
from ansible.vars.manager import VariableManager

from ansible_collections.mailops.mailstack.plugins.filter.wiring import mail_wiring
from mailstack_testlib.templates import render, setting

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "extensions" / "molecule" / "sharded"
NODES = ["ns1", "proxy1", "ms2"]
TEMPLATE = "etc/mysql/mariadb.conf.d/60-mailstack.cnf.j2"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """(the environment of the scenario's Ansible runs, the inventory
    directory Molecule writes for the scenario), by Molecule's own code from
    molecule.yml over config.yml, into a temporary ephemeral directory (no
    host is created or reached)."""
    ephemeral = tmp_path_factory.mktemp("molecule")
    saved = dict((k, os.environ.get(k)) for k in ("MOLECULE_EPHEMERAL_DIRECTORY", "PATH"))
    # Molecule asks ansible-config, which lives beside this Python.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    os.environ["MOLECULE_EPHEMERAL_DIRECTORY"] = str(ephemeral)
    try:
        from molecule import config as molecule_config
        config = molecule_config.Config(molecule_file=str(SCENARIO / "molecule.yml"))
        directory = config.provisioner.inventory_directory
        os.makedirs(directory, exist_ok=True)
        config.provisioner.manage_inventory()
        return dict(config.provisioner.env), directory
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def inventory(directory):
    """(groups, hostvars) of Molecule's inventory as ansible-playbook loads
    it, with the facts the wiring reads (an address each, as site.yml's
    fact gathering gives them; a lab's are podman's)."""
    manager = InventoryManager(loader=DataLoader(), sources=[directory])
    variables = VariableManager(loader=DataLoader(), inventory=manager)
    groups = manager.get_groups_dict()
    hostvars = {}
    for index, name in enumerate(groups["all"]):
        values = dict(variables.get_vars(host=manager.get_host(name), include_hostvars=False))
        values["ansible_facts"] = {"default_ipv4": {"address": "10.89.0.%d" % (index + 2)},
                                   "default_ipv6": {"address": "fd00:89::%d" % (index + 2)},
                                   "processor_vcpus": 2}
        hostvars[name] = values
    return groups, hostvars


@pytest.fixture(scope="module")
def wired(scenario):
    groups, hostvars = inventory(scenario[1])
    result = mail_wiring(groups, hostvars)
    assert result["errors"] == [], result["errors"]
    return groups, hostvars, result


def address(hostvars, name):
    return hostvars[name]["ansible_facts"]["default_ipv4"]["address"]


def test_the_nodes_are_ns1_proxy1_ms2_in_that_order(wired):
    groups, hostvars, result = wired
    assert result["topology"] == "sharded"
    assert groups["mail_db"] == NODES and "mail_db_replica" not in groups
    addresses = [address(hostvars, n) for n in NODES]
    for server_id, name in enumerate(NODES, 1):
        options = result["hosts"][name]["options"]
        assert "mail_database" in result["hosts"][name]["roles"], name
        assert {k: options[k] for k in ("mail_database_mode", "mail_database_galera_hosts",
                                        "mail_database_galera_nodes", "mail_database_galera_node_address",
                                        "mail_database_server_id", "mail_database_tls")} == {
            "mail_database_mode": "galera", "mail_database_galera_hosts": NODES,
            "mail_database_galera_nodes": addresses, "mail_database_galera_node_address": addresses[server_id - 1],
            "mail_database_server_id": server_id, "mail_database_tls": True}, name
        # Its certificate names the address the others verify (SST's VERIFY_IDENTITY, the readers).
        assert addresses[server_id - 1] in options["tls_names"], (name, options["tls_names"])
    # The other hosts read every node; none of them is one.
    assert result["hosts"]["smtp1"]["options"]["postfix_db_hosts"] == addresses
    assert result["hosts"]["ms1"]["options"]["dovecot_db_hosts"] == addresses
    for name in ("smtp1", "smtp2", "ms1", "outside1"):
        assert "mail_database" not in result["hosts"].get(name, {}).get("roles", []), name


def effective(hostvars, result, name):
    """The mail_database options the role sees on name: the inventory's,
    else the wiring's (site.yml keeps the inventory's value)."""
    options = dict((k, v) for k, v in result["hosts"][name]["options"].items() if k.startswith("mail_database_"))
    options.update((k, v) for k, v in hostvars[name].items() if k.startswith("mail_database_"))
    return options


def test_the_labs_memory_settings_reach_every_nodes_configuration(wired):
    groups, hostvars, result = wired
    with open(ROOT / "roles" / "mail_database" / "meta" / "argument_specs.yml") as f:
        spec = yaml.safe_load(f)["argument_specs"]["main"]["options"]
    addresses = [address(hostvars, n) for n in NODES]
    for name in NODES:
        options = effective(hostvars, result, name)
        checked = ArgumentSpecValidator(spec).validate(options, validate_role_argument_spec=True)
        assert checked.error_messages == [], (name, checked.error_messages)
        text = render("mail_database", TEMPLATE, inventory_hostname=name, **options)
        assert setting(text, "innodb-buffer-pool-size") == "64M", text
        provider = dict(o.split("=", 1) for o in setting(text, "wsrep-provider-options").strip('"').split(";"))
        assert provider["gcache.size"] == "64M", provider
        assert provider["gmcast.listen_addr"] == "tcp://%s:4567" % addresses[NODES.index(name)], provider
        assert setting(text, "wsrep-cluster-address") == "gcomm://" + ",".join(addresses), text
        assert setting(text, "wsrep-on") == "ON" and setting(text, "wsrep-sst-method") == "mariabackup", text


def test_the_check_limited_to_one_host_runs_on_a_node(scenario, wired):
    """side_effect's second check mode run (shared/check_unchanged.yml):
    --limit on a node, whose role reads the others and finds the cluster
    running (the branch that starts and bootstraps nothing)."""
    groups, _hostvars, _result = wired
    limit = scenario[0]["MAILSTACK_CHECK_LIMIT"]
    assert limit in groups["mail_db"] and limit != groups["mail_db"][0], limit


def test_converge_provisions_the_users_on_the_first_node_only(scenario):
    """Once, on ns1: the rows replicate; three nodes writing the same rows
    at once would meet as certification conflicts."""
    with open(SCENARIO / "converge.yml") as f:
        plays = yaml.safe_load(f)
    (play,) = [p for p in plays if p.get("name", "").startswith("Provision the lab's users")]
    # The pattern, on Molecule's inventory, as ansible-playbook resolves it.
    manager = InventoryManager(loader=DataLoader(), sources=[scenario[1]])
    assert [h.name for h in manager.get_hosts(play["hosts"])] == ["ns1"], play["hosts"]
    # Limited to another node (the check mode run), it runs nowhere.
    manager.subset("ms2")
    assert manager.get_hosts(play["hosts"]) == []
