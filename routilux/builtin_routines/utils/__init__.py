"""Utility routines."""

from routilux.builtin_routines.utils.time_provider import TimeProvider

__all__ = ["TimeProvider"]
