"""The networks family: the model registry (``models``), training (``train``, ``schedules``), where
networks train (``parallel``), the runtimes that run them (``runtime``) and the backend's start
(``backend``). Nothing is imported here: the backend starts only when a command needs it."""
