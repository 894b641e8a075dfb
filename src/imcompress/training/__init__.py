"""What a training job is made of (Lightning side): the LightningModule
(:mod:`~imcompress.training.module`), callbacks, loggers, checkpoints and which one is tested,
BatchNorm re-estimation, performance settings and the shared dense stage. Compression, models
and the crossbar model know nothing of this package."""
