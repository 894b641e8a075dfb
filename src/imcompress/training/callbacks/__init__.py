"""Lightning callbacks: crossbar costs every epoch (:mod:`.crossbar`), a pruning schedule (:mod:`.pruning`)."""
