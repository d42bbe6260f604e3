"""The data side's persistence: the SQLite history (:mod:`storage.history`) and its optional copy in a Hugging
Face dataset repo (:mod:`storage.dataset_backup`). It knows updates, never the WebSocket layer."""
