"""Looking up a name by its module and qualified name (one place for every caller)."""

from __future__ import annotations

import importlib
from typing import Any


def import_qualified(module: str, qualname: str) -> Any:
    """Import ``module`` and look ``qualname`` (``"Outer.Inner"``) up in it.

    Raises ImportError or AttributeError: callers say what they were looking for.
    """
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj
