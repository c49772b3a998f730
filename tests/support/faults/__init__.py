"""The fault suite: real processes, a PostgreSQL and a Mosquitto of its own, and faults.

`tests/e2e/test_faults.py` runs the short version of every scenario as pytest tests
(`-m faults`); `python -m bench.faults` runs the long one and prints a table. Both
take their scenarios from `scenarios.py`.
"""
