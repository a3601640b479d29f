"""Hub fixtures for this folder: loads ``tests.harness.pytest_plugin`` unless the root conftest already did.

(If ``tests/conftest.py`` lists it in ``pytest_plugins``, the module is imported before this file and
its fixtures are visible everywhere; importing them again here would start a second hub per session.)
"""

from __future__ import annotations

import sys

if "tests.harness.pytest_plugin" not in sys.modules:
    from tests.harness.pytest_plugin import (  # noqa: F401  (fixtures and hooks are found by name)
        pytest_collection_modifyitems,
        pytest_terminal_summary,
        real_hub,
        real_hub_mqtt,
        real_hub_v3,
    )
