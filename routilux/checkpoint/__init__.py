"""Durable checkpoints: the signed file format and the stores that keep them."""

from routilux.checkpoint.stores import CheckpointStore, DirectoryStore, SQLiteStore, open_store

__all__ = ["CheckpointStore", "DirectoryStore", "SQLiteStore", "open_store"]
