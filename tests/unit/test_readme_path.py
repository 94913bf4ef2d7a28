"""The README's marked blocks (scripts/readme_blocks.py), which scripts/readme-path.sh runs as they stand.

The suite runs the blocks; these tests keep them in step with the files they
name: the tarball's version (galaxy.yml), the ansible-core pin
(requirements.txt), the `ansible` release whose collections scripts/setup.sh
falls back on, and the controller's Python libraries (meta/ee-requirements.txt).
"""

import pathlib
import re
import shlex

import pytest
import yaml

from mailstack_testlib import load_script

ROOT = pathlib.Path(__file__).resolve().parents[2]
readme_blocks = load_script('readme_blocks')

README = (ROOT / 'README.md').read_text(encoding='utf-8')


def commands(block):
    """The block's commands as word lists, comments dropped."""
    return [shlex.split(line, comments=True) for line in block.splitlines() if shlex.split(line, comments=True)]


def test_blocks_finds_the_marked_block_only():
    text = 'intro\n```sh\nnot this\n```\n<!-- readme-path: install -->\n\n```sh\na\nb  # c\n```\n'
    assert readme_blocks.blocks(text) == {'install': 'a\nb  # c\n'}


@pytest.mark.parametrize('text, message', [
    ('<!-- readme-path: run -->\ntext\n```sh\nx\n```\n', 'not followed by a ```sh block'),
    ('<!-- readme-path: run -->\n```sh\nx\n', 'is not closed'),
    ('<!-- readme-path: run -->\n```sh\nx\n```\n<!-- readme-path: run -->\n```sh\ny\n```\n', 'appears twice'),
])
def test_blocks_refuses_a_broken_marker(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        readme_blocks.blocks(text)


def test_block_names_the_missing_marker():
    with pytest.raises(ValueError, match='no block marked <!-- readme-path: run -->'):
        readme_blocks.block('<!-- readme-path: install -->\n```sh\nx\n```\n', 'run')


def test_main_prints_the_block_and_fails_on_a_missing_one(tmp_path, capsys):
    readme = tmp_path / 'README.md'
    readme.write_text('<!-- readme-path: run -->\n```sh\nansible-playbook x\n```\n')
    assert readme_blocks.main(['readme_blocks.py', str(readme), 'run']) == 0
    assert capsys.readouterr().out == 'ansible-playbook x\n'
    assert readme_blocks.main(['readme_blocks.py', str(readme), 'install']) == 1
    assert 'no block marked <!-- readme-path: install -->' in capsys.readouterr().err


def test_install_block_uses_a_new_venv_and_nothing_of_setup():
    block = readme_blocks.block(README, 'install')
    cmds = commands(block)
    assert cmds[0][:3] == ['python3', '-m', 'venv'], 'the first command makes the venv readme-path.sh looks for'
    for word in ('setup.sh', '.venv', '.cache', 'ANSIBLE_COLLECTIONS_PATH', 'requirements.yml', 'make '):
        assert word not in block, f'the install block uses {word!r}, which a plain controller does not have'


def test_install_block_pins_what_the_project_tests_with():
    pip = next(c for c in commands(readme_blocks.block(README, 'install')) if c[:2] == ['pip', 'install'])
    core = re.search(r'^ansible-core==(\S+)', (ROOT / 'requirements.txt').read_text(), re.M).group(1)
    bundle = re.search(r'ansible_bundle=\$\{MAILSTACK_ANSIBLE_BUNDLE:-([^}]+)\}',
                       (ROOT / 'scripts' / 'setup.sh').read_text()).group(1)
    assert f'ansible-core=={core}' in pip
    assert f'ansible=={bundle}' in pip, "the ansible release whose collections setup.sh's fallback uses"
    libs = [re.split(r'[<>=!~ ]', line)[0] for line in (ROOT / 'meta' / 'ee-requirements.txt').read_text().splitlines()
            if line.strip() and not line.startswith('#')]
    assert libs
    for lib in libs:
        assert any(re.split(r'[<>=!~]', word)[0] == lib for word in pip), f'{lib} (meta/ee-requirements.txt) is not installed'


def test_install_block_installs_the_built_tarball():
    version = yaml.safe_load((ROOT / 'galaxy.yml').read_text())['version']
    cmds = commands(readme_blocks.block(README, 'install'))
    assert ['ansible-galaxy', 'collection', 'install', f'mailops-mailstack-{version}.tar.gz'] in cmds


def test_run_block_runs_the_installed_collections_playbook_in_that_venv():
    venv = commands(readme_blocks.block(README, 'install'))[0][3]
    cmds = commands(readme_blocks.block(README, 'run'))
    assert cmds == [['.', f'{venv}/bin/activate'],
                    ['ansible-playbook', '-i', 'inventory/hosts.yml', 'mailops.mailstack.site']]
