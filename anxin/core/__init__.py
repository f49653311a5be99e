"""The shared kernel: records, registry, settings, logs, YAML loading and topic names.

It sits at the bottom of the house and imports no room (``ingest``, ``detectors``, ``alerts``,
``storage``, ``simulators``, ``console``) and none of the wiring; every room may import it.
``tests/test_architecture.py`` enforces that with import-linter.
"""
