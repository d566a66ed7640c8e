"""Family Context Federation: shared code and the ``familyctx`` command-line tool."""

__version__ = "0.1.0"
