"""harness: start and stop the local processes the tests and the benchmarks run against.

Two kinds of processes, each behind one context manager that always stops what it started:

- :mod:`harness.processes`: a server in its own process group (``geocommuns serve`` under
  gunicorn, or any other command), on a free 127.0.0.1 port, waited for until it answers;
- :mod:`harness.postgres`: a throwaway PostgreSQL + PostGIS cluster, in which each user
  (a test module, a benchmark run) creates its own database.

Why a package of its own at the repository root: the tests (``tests/``, not a package:
pytest puts its folder on ``sys.path``) and the benchmarks (``bench/``, run as
``python -m bench.<name>`` from the root) both need these helpers, and neither should
import the other for them (the benchmark used to reach into ``tests/`` through ``sys.path``
for the PostgreSQL helper, and kept its own copy of the server helper; the tests depending
on the benchmark would make the safety net rest on a measuring tool). Nor do they belong in ``geocommuns``, which is what is shipped and
never starts a PostgreSQL cluster. ``harness`` sits beside both, imports nothing of
either (only the standard library, httpx and psycopg; it runs the ``geocommuns`` command
of the current virtualenv), and is found by pytest through ``pythonpath = ["."]`` in
pyproject.toml and by ``python -m bench.<name>`` because that runs from the root.
"""
