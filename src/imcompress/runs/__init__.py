"""A run folder and its records: the one reader (:mod:`~imcompress.runs.folder`), ``summary.json``
across attempts (:mod:`~imcompress.runs.record`), the final table and summary
(:mod:`~imcompress.runs.summary`), the folder lock (:mod:`~imcompress.runs.lock`) and the one
atomic write (:mod:`~imcompress.runs.atomic`). Imports no Lightning."""
