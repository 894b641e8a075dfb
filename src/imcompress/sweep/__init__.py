"""Sweeps at scale: SLURM launcher, requeue, per-sweep aggregation and plots, W&B dashboards.

Modules: ``slurm`` (cluster checks, queue states), ``requeue`` (resume after a SLURM requeue),
``launcher`` (the Hydra SLURM launcher behind ``hydra/launcher=slurm``), ``jobs`` (the jobs of a
sweep folder), ``aggregate`` (``sweep_summary.csv``), ``pareto``, ``plots``, ``report`` (table +
plots + console summary), ``callback`` (the Hydra callback that writes the report after every
multirun), ``dashboard`` (the W&B workspace spec).
"""
