"""Files: ``save`` / ``load`` and the model formats (``persistence``, ``npz_format``,
``npz_decode``, ``pickle_format``, ``model_file``), signals, atomic writers, the command
line's sources and readers, and files as a source of rows for ``fit`` (``file_rows``)."""
