"""Test-suite wide configuration: one real hub per pytest session (see tests/harness)."""

pytest_plugins = ["tests.harness.pytest_plugin"]
