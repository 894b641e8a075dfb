"""Hardware-aware compression planner: per-layer GLR rank/group or pruning sparsity under a
crossbar budget (cycles, latency, energy, arrays or parameters), least output damage.

Entry point: ``src/plan.py`` (:func:`imcompress.planner.job.run_plan`); the core is
:func:`imcompress.planner.search.make_plan`. See docs/planner.md.
"""
