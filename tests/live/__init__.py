"""Tests against a real HiveMind hub on loopback (fixtures in conftest.py)."""
