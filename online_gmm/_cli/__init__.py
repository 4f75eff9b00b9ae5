"""The ``online-gmm`` command line: the parser and ``main`` (``main``), the commands,
their options, files and output, and the demo."""
