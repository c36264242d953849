"""Class references in flow files, and the allow-list rule that guards importing them.

A reference is ``package.module:ClassName`` or the short name of a built-in routine
(``Mapper``). A module is imported only when the allow-list admits it: an entry
``package.module`` admits exactly that module, ``package.*`` admits ``package`` and
every module below it; the class must be defined in an admitted module too, and
private names (``_x``) are refused. Built-in routines (the public names of
:mod:`routilux.builtin_routines`) are always allowed, and so are the names of
Python's built-in exception classes in ``retryable_exceptions``. Nothing else is
ever imported because a file says so.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable
from typing import Any

from routilux import builtin_routines
from routilux._imports import import_qualified
from routilux.exceptions import ConfigurationError
from routilux.routine import Routine

BUILTIN_PACKAGE = "routilux.builtin_routines"
_ALLOW_ENTRY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(\.\*)?$")


def builtin_routine_classes() -> dict[str, type[Routine]]:
    """Short name -> class of every built-in routine."""
    found = {}
    for name in builtin_routines.__all__:
        obj = getattr(builtin_routines, name)
        if isinstance(obj, type) and issubclass(obj, Routine) and not name.startswith("Builtin"):
            found[name] = obj
    return found


def builtin_exception(name: str) -> type[BaseException] | None:
    """The built-in exception class called ``name`` (``"ConnectionError"``), or None."""
    obj = getattr(builtins, name, None)
    return obj if isinstance(obj, type) and issubclass(obj, BaseException) else None


def check_allow_list(allowed_modules: Iterable[str]) -> tuple[str, ...]:
    """The allow-list as a tuple; a malformed entry raises ConfigurationError."""
    if isinstance(allowed_modules, str):
        allowed_modules = [allowed_modules]
    entries = tuple(allowed_modules or ())
    for entry in entries:
        if not isinstance(entry, str) or not _ALLOW_ENTRY.match(entry):
            raise ConfigurationError(
                f"allowed_modules entry {entry!r} is not a module name; use 'package.module' "
                "for one module or 'package.*' for a package and everything below it"
            )
    return entries


def module_allowed(module: str, allowed: Iterable[str]) -> bool:
    """Whether the allow-list admits importing ``module``."""
    for entry in allowed:
        if entry.endswith(".*"):
            package = entry[:-2]
            if module == package or module.startswith(package + "."):
                return True
        elif module == entry:
            return True
    return False


def split_ref(ref: str) -> tuple[str, str]:
    """``"pkg.mod:Outer.Inner"`` -> ``("pkg.mod", "Outer.Inner")``; a short name has
    no module (``("", "Mapper")``)."""
    module, _, qualname = ref.rpartition(":")
    return module, qualname


def refusal(ref: str, allowed: Iterable[str], kind: str = "routine") -> str | None:
    """Why ``ref`` may not be used (None: it may). Imports nothing."""
    module, qualname = split_ref(ref)
    if any(part.startswith("_") for part in qualname.split(".")):
        return f"{qualname!r} names a private attribute; flow files name public classes only"
    if kind == "exception" and not module:
        if builtin_exception(qualname) is None:
            return (
                f"{qualname!r} is not a built-in exception; name others as 'package.module:Class'"
            )
        return None
    if not module:
        known = builtin_routine_classes()
        if qualname not in known:
            return (
                f"{qualname!r} is not a built-in routine (built-ins: {', '.join(sorted(known))}); "
                "name other classes as 'package.module:ClassName'"
            )
        return None
    if _builtin_module(module) or module_allowed(module, allowed):
        return None
    allowed = list(allowed)
    shown = ", ".join(allowed) if allowed else "nothing but the built-ins"
    return (
        f"module {module!r} is not in the allow-list (allowed: {shown}); allow it with "
        f"--allow {module} (CLI) or allowed_modules=[{module!r}] (API) if you trust it"
    )


def _builtin_module(module: str) -> bool:
    return module == BUILTIN_PACKAGE or module.startswith(BUILTIN_PACKAGE + ".")


def import_ref(ref: str, allowed: Iterable[str]) -> Any:
    """Import what ``ref`` names (only after :func:`refusal` returned None).

    A class reached through an allowed module but defined in another one (``mod:os``
    style chains, re-exports) must be allowed by its own module too.
    """
    module, qualname = split_ref(ref)
    if not module:
        return builtin_routine_classes().get(qualname) or builtin_exception(qualname)
    try:
        obj = import_qualified(module, qualname)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import module {module!r}: {exc}") from None
    except AttributeError:
        raise ConfigurationError(f"module {module!r} has no attribute {qualname!r}") from None
    home = getattr(obj, "__module__", None) if isinstance(obj, type) else None
    if home and home != "builtins" and not _builtin_module(home):
        if not module_allowed(home, allowed):
            raise ConfigurationError(
                f"{qualname!r} is defined in module {home!r}, which is not in the allow-list; "
                f"allow it too (--allow {home}) if you trust it"
            )
    return obj


def class_ref(cls: type) -> str:
    """The reference a flow file uses for ``cls`` (short names for built-ins)."""
    if builtin_routine_classes().get(cls.__name__) is cls:
        return cls.__name__
    if builtin_exception(cls.__name__) is cls:
        return cls.__name__
    return f"{cls.__module__}:{cls.__qualname__}"
