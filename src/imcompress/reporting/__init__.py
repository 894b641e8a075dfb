"""Every table (:mod:`~imcompress.reporting.tables`: console, Markdown, LaTeX, CSV), every figure
(:mod:`~imcompress.reporting.figures`) and the method names and labels they share
(:mod:`~imcompress.reporting.vocabulary`). Imports no torch; figures import matplotlib only
when called."""
