"""Layer ``study``: plans of many runs (:mod:`.runner`), their records (:mod:`.records`),
**the** comparison rule (:mod:`.rule`), tables (:mod:`.tables`) and the findings the book
states (:mod:`.headline`, :mod:`.bridge`, :mod:`.claims`, :mod:`.benchmarks`). Imports
``engine`` and below; beside ``retrieval``."""
