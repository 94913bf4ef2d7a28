# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The project's scripts (scripts/NAME.py) as modules, for their tests."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import importlib.util
import os

from .runner import REPO


def load_script(name):
    """scripts/NAME.py of this checkout, imported as the module NAME."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(str(REPO), 'scripts', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
