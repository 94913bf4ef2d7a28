# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way the tests, the Molecule scenarios' checks and the benchmarks
run Ansible (see runner.py); mailstack_testlib.mariadb has the throw-away
MariaDB and the module runner of tests/integration and bench/run provision;
mailstack_testlib.queries renders the queries the tiers send to it (bench/run
scale, tests/integration/test_tier_queries.py).

On the path by configuration, never by code: pytest.ini (pythonpath),
extensions/molecule/config.yml (PYTHONPATH for the verifier and the
provisioner), bench/run (PYTHONPATH).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from .runner import (BIN, CONFIG, JSON_CALLBACK, REPO, adhoc, ansible_env, binary, collections_path, json_report,
                     module, playbook, playbook_report, recap, task_results)
from .scripts import load_script

__all__ = ['BIN', 'CONFIG', 'JSON_CALLBACK', 'REPO', 'adhoc', 'ansible_env', 'binary', 'collections_path',
           'json_report', 'load_script', 'module', 'playbook', 'playbook_report', 'recap', 'task_results']
