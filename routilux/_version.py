"""The package version (its own module: the checkpoint format records it)."""

__version__ = "0.11.0"
