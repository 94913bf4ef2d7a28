"""The port tables of the docs (docs/guide.md, docs/ports.md) are the ones
the wiring makes from the example inventories (scripts/port_tables.py writes
them), like test_site_wiring.py checks docs/topologies.md's role table."""

import os

import pytest

from mailstack_testlib import load_script

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
port_tables = load_script("port_tables")


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


@pytest.mark.parametrize("path", port_tables.DOCS)
def test_the_docs_tables_are_the_wirings(path):
    text = read(path)
    assert text == port_tables.render(text), (
        "%s: a port table differs from the wiring's: run scripts/port_tables.py" % path)


def test_the_guide_has_the_sharded_table_and_ports_md_every_topology():
    assert [m.group(2) for m in port_tables.MARKED.finditer(read("docs/guide.md"))] == ["sharded"]
    assert [m.group(2) for m in port_tables.MARKED.finditer(read("docs/ports.md"))] == [
        "single", "backup_mx", "nfs_shared", "sharded"]


def test_a_table_names_each_port_once_per_tier_and_service():
    table = port_tables.table("sharded")
    assert "| `mail_db` (db1) | 3306/tcp |" in table
    assert "| `mail_store` (ms1, ms2) | 24/tcp | LMTP" in table
    rows = table.splitlines()[2:]
    assert len(rows) == len(set(rows))


def test_any_inventory_is_tabled_without_its_vault_password():
    """scripts/port_tables.py -i DIR: the wiring reads no secret, so an
    inventory whose vault stays locked gives the same table."""
    assert port_tables.table(None, os.path.join(port_tables.EXAMPLES, "sharded")) == port_tables.table("sharded")
