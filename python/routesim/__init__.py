"""routesim from Python: route traces with built-in routers or routers
written in numpy / torch, get the metrics as pandas DataFrames
(docs/python.md).

    import routesim
    df = routesim.route("trace.h5", "topk:k=2", ["load", "entropy"])
"""

from ._version import __version__
from .errors import RoutesimError
from .registries import info, load_plugin, metrics, routers
from .results import ALL_LAYERS, COLUMNS, read_results
from .router import Block, Router
from .routing import plot, route, run

__all__ = ["__version__", "RoutesimError", "route", "run", "plot", "read_results", "info", "routers", "metrics",
           "load_plugin", "Router", "Block", "ALL_LAYERS", "COLUMNS", "Recorder"]


def __getattr__(name):
    # The recorder needs torch, which takes a second or two to import:
    # import it when routesim.Recorder is first used, not with the package.
    if name == "Recorder":
        from .recorder import Recorder

        return Recorder
    raise AttributeError(f"module 'routesim' has no attribute {name!r}")
