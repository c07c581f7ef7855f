"""Layer ``engine``: running a model on data. Training (:mod:`.train`), evaluation
(:mod:`.evaluate`), retrieval metrics (:mod:`.metrics`), what a checkpoint holds
(:mod:`.checkpoints`), the device and the machine a run was on (:mod:`.device`,
:mod:`.hardware`). Imports ``models``, ``data`` and the cross-cutting modules only."""
