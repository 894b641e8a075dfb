"""The job behind each entry script: ``src/train.py`` -> :mod:`~imcompress.jobs.train`,
``src/estimate.py`` -> :mod:`~imcompress.jobs.estimate`, ``src/plan.py`` ->
:mod:`~imcompress.jobs.plan`, ``src/evaluate.py`` -> :mod:`~imcompress.jobs.evaluate`. The
scripts only register the config schemas and hand Hydra's config to these."""
