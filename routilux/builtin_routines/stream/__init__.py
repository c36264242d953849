"""Stream routines: batch, aggregate, split, filter, map and debounce messages."""

from routilux.builtin_routines.stream.aggregator import Aggregator
from routilux.builtin_routines.stream.batcher import Batcher
from routilux.builtin_routines.stream.debouncer import Debouncer
from routilux.builtin_routines.stream.filter import Filter
from routilux.builtin_routines.stream.mapper import Mapper
from routilux.builtin_routines.stream.splitter import Splitter

__all__ = ["Aggregator", "Batcher", "Debouncer", "Filter", "Mapper", "Splitter"]
