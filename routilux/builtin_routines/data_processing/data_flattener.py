"""Old home of DataFlattener (now :mod:`routilux.builtin_routines.utils.data_flattener`,
its routilux 0.10 place); kept so that existing imports and checkpoints still resolve."""

from routilux.builtin_routines.utils.data_flattener import DataFlattener

__all__ = ["DataFlattener"]
