"""Layer ``book``: executing the chapters (:mod:`.runner`), what the chapters compute and
draw (:mod:`.analysis`, :mod:`.figures`), the numbers of the pages generated from the records
(:mod:`.generated`), and the rendered site (:mod:`.site`, :mod:`.search_page`). Imports ``study``,
``retrieval`` and below; beside ``interactive``."""
