"""The ``routilux`` command line (``routilux --help``)."""
