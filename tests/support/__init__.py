"""Test support shared by the tests and ``benchmarks/reliability.py``: import it as
``tests.support.<module>`` (the editable install puts the project root on the path).

* :mod:`~tests.support.scenarios` — jobs on the emulator over HTTP: the crash, fault and
  poller scenarios, the emulator process, the checks on what a job left behind.
* :mod:`~tests.support.stage_scenarios` — kill -9 as a pipeline moves between stages.
* :mod:`~tests.support.hostile` — hostile judge replies and bad input.
* ``kyro_child.py`` — ``python -m kyro`` that SIGKILLs itself at a named cut point (run as a
  script by the scenarios).
* :mod:`~tests.support.disk` — durable-I/O doubles: a disk that fails (ENOSPC, EACCES), one
  that kills the process around a write.
* :mod:`~tests.support.providers` — a provider wrapper that crashes at the Nth call.
"""
