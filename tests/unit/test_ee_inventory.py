"""scripts/ee_inventory.py: a Molecule inventory as an AWX job in the EE receives it."""

import pathlib

import yaml

from mailstack_testlib import load_script

ROOT = pathlib.Path(__file__).resolve().parents[2]
ee_inventory = load_script('ee_inventory')

MOLECULE_HOST = {
    'ansible_connection': 'ssh',
    'ansible_podman_executable': 'podman',
    'ansible_ssh_common_args': '-o ProxyCommand="podman exec -i %h /usr/sbin/sshd -i" -o StrictHostKeyChecking=no',
    'ansible_ssh_pipelining': True,
    'ansible_ssh_private_key_file': '/work/main/.cache/molecule/single/lab_ssh_key',
    'ansible_user': 'root',
}


def write_molecule_inventory(tmp_path):
    src = tmp_path / 'src'
    (src / 'group_vars').mkdir(parents=True)
    (src / 'host_vars').mkdir()
    inventory = {
        'all': {
            'hosts': {'mx1': dict(MOLECULE_HOST), 'ns1': dict(MOLECULE_HOST)},
            'vars': {'molecule_file': "{{ lookup('env', 'MOLECULE_FILE') }}"},
        },
        'mail_mx': {'hosts': {'mx1': dict(MOLECULE_HOST)}, 'vars': {'molecule_yml': 'x', 'kept': 1}},
    }
    (src / 'ansible_inventory.yml').write_text('# Molecule managed\n\n' + yaml.safe_dump(inventory))
    (src / 'group_vars' / 'all').write_text(yaml.safe_dump({
        'tls_ca_dir': '/work/main/.cache/molecule/single/ca',
        'files': ['/work/main/inventories/lab/files/a.ndb', '/elsewhere/b'],
        'mailstack_domain': 'example.test',
        'not_a_prefix': '/work/mainly/x',
    }))
    (src / 'host_vars' / 'mx1').write_text('postfix_content_filter_concurrency: 3\n')
    return src


def test_the_job_connects_over_ssh_with_its_credential_and_sees_the_project_paths(tmp_path):
    src = write_molecule_inventory(tmp_path)
    dest = tmp_path / 'dest'
    ee_inventory.main(str(src), str(dest), '/work/main', '/runner/project')

    hosts = yaml.safe_load((dest / 'hosts.yml').read_text())
    for group, host in (('all', 'mx1'), ('all', 'ns1'), ('mail_mx', 'mx1')):
        hostvars = hosts[group]['hosts'][host]
        assert 'ProxyCommand' not in hostvars['ansible_ssh_common_args']
        assert 'ansible_ssh_private_key_file' not in hostvars
        assert 'ansible_podman_executable' not in hostvars
        assert hostvars['ansible_user'] == 'root'
        assert hostvars['ansible_ssh_pipelining'] is True
    # Molecule's own variables go, the scenario's stay.
    assert 'vars' not in hosts['all']
    assert hosts['mail_mx']['vars'] == {'kept': 1}

    group_all = yaml.safe_load((dest / 'group_vars' / 'all.yml').read_text())
    assert group_all == {
        'tls_ca_dir': '/runner/project/.cache/molecule/single/ca',
        'files': ['/runner/project/inventories/lab/files/a.ndb', '/elsewhere/b'],
        'mailstack_domain': 'example.test',
        'not_a_prefix': '/work/mainly/x',
    }
    assert yaml.safe_load((dest / 'host_vars' / 'mx1.yml').read_text()) == {
        'postfix_content_filter_concurrency': 3}


def test_a_host_not_reached_over_ssh_keeps_its_connection():
    assert ee_inventory.job_host({'ansible_connection': 'local', 'x': 1}) == {
        'ansible_connection': 'local', 'x': 1}
