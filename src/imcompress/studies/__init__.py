"""Study drivers that write their own job lists, run them resumably and export committed records
(``results/<study>/``) from which every table and figure regenerates: see
:mod:`imcompress.studies.decisive`."""
