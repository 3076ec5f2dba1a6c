"""The exception every failure of the library arrives as."""


class RoutesimError(RuntimeError):
    """A failure reported by libroutesim, carrying its one-line message
    (which names the file, the field or the router at fault)."""
