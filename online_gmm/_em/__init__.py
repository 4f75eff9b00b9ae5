"""The EM steps: the online step every caller takes (``online.advance``), batch EM
(``batch``: ``fit``'s iteration and its sources), ``fit``'s starts (``fit_init``),
seeding, the warm-up and its variational moves, the checks of a state, and the Dask
adapter (a source for ``fit``, a batch for ``partial_fit``)."""
