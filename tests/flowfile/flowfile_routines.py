"""Routines that the flow file tests name as ``flowfile_routines:ClassName``."""

from __future__ import annotations

from typing import ClassVar

from routilux import Routine


class Source(Routine):
    """Emits each item of ``items`` (the entry routine)."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("item", ["value"])

    def go(self, items):
        for value in items:
            self.emit("item", value=value)


class Scale(Routine):
    """Multiplies by its ``factor`` config (default 2, set by the constructor)."""

    def __init__(self):
        super().__init__()
        self.set_config(factor=2, label="scale")
        self.define_slot("input", handler=self.scale)
        self.define_event("scaled", ["value"])

    def scale(self, value):
        self.emit("scaled", value=value * self.get_config("factor"))


class Sink(Routine):
    """Sends every value it gets to the job's output."""

    def __init__(self):
        super().__init__()
        self.define_slot("input", handler=self.take)

    def take(self, value=None, **rest):
        self.send_output("value", value=value, **rest)


class Declared(Routine):
    """Declares its config keys: a flow file may set only these."""

    CONFIG_DEFAULTS: ClassVar[dict] = {"size": 1, "name": "d"}

    def __init__(self):
        super().__init__()
        self.set_config(**self.CONFIG_DEFAULTS)
        self.define_slot("input")


class Dotted(Routine):
    """An event and a slot whose names hold dots."""

    def __init__(self):
        super().__init__()
        self.define_slot("in.put", handler=lambda **kw: self.emit("out.put", **kw))
        self.define_event("out.put")


class NeedsArgument(Routine):
    def __init__(self, required):
        super().__init__()


class NotARoutine:
    pass


class Retryable(Exception):
    """A user exception class for ``retryable_exceptions``."""


def not_a_class():
    return None
