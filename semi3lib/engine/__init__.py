"""Layer ``engine``: running a model on data. Training (:mod:`.train`), evaluation
(:mod:`.evaluate`), embedding photos and sketches in batches (:mod:`.embedding`), retrieval
metrics (:mod:`.metrics`), what a checkpoint holds (:mod:`.checkpoints`), a run's record
(:mod:`.records`), every check of a run before its folder exists (:mod:`.prechecks`), the device
and the machine a run was on (:mod:`.device`, :mod:`.hardware`).
Imports ``models``, ``data`` and the cross-cutting modules only."""
