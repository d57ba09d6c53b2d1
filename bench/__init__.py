"""Benchmarks: the help desk measured against the bare parts it is built on (``python -m bench``).

Each scenario starts its own servers on free ports, measures the bare parts
(Temporal alone, an SMTP server that only parses, plain SQL) and the help desk
in the same run, and reports ``value``, ``baseline`` and their ``ratio``.
"""
