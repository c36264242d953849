"""Control-flow routines: route messages by condition."""

from routilux.builtin_routines.control_flow.conditional_router import ConditionalRouter

__all__ = ["ConditionalRouter"]
