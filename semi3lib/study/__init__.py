"""Layer ``study``: plans of many runs (:mod:`.runner`), their records, **the** comparison
rule (:mod:`.rule`), tables and the findings the book states (:mod:`.bridge`,
:mod:`.claims`, :mod:`.benchmarks`). Imports ``engine`` and below; beside ``retrieval``."""
