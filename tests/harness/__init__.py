"""The project's own real-hub test harness (hivemind-core in a separate venv, mosquitto, OVOS bus, echo agent).

Entry points: ``tests.harness.hub.TestHub`` (Python), ``python -m tests.harness.hub start|stop|status``
(CLI) and the ``real_hub`` / ``real_hub_v3`` fixtures in ``tests/live/conftest.py``.
"""
