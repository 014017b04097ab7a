"""The commands beside ``worker``: ``faust -A app replay`` (``replay``, with its sources
``datasets`` and the seeded ``fraud`` stream) and ``faust -A app features`` (``features``)."""
