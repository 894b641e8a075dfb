"""imcompress: compress CNNs (low-rank, group low-rank, pruning) for IMC crossbar accelerators."""

__version__ = "0.1.0"
