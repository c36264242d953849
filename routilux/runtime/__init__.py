"""The actor runtime: the flow supervisor, routine actors and their messages."""
