"""Layer ``retrieval``: photo galleries as saved indexes (:mod:`.index`), sketch search over
them (:mod:`.search`) and the export for the book's in-browser search (:mod:`.export`).
Imports ``engine`` and below; beside ``study``, which it never imports."""
