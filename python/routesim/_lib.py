"""Finding and loading libroutesim.so with ctypes: the search order, the
version check, and the mirrors of the structures include/routesim/embed.h
shares with hosts (checked against the library's own sizes).

The library is loaded on first use, so `import routesim` works (and the
recorder can write traces) where the library is not built yet. ctypes.CDLL
releases the GIL for the duration of every call into the library."""

import ctypes
import ctypes.util
import os
import threading

from ._version import __version__
from .errors import RoutesimError

ENV_VAR = "ROUTESIM_LIB"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

# Number of RS_PLUGIN_STRUCTS (include/routesim/plugin.h): rs_struct_sizes
# lists them first, then the structures of embed.h.
_NUM_PLUGIN_STRUCTS = 15
RS_ERROR_MSG_MAX = 1024


class RsError(ctypes.Structure):
    _fields_ = [("msg", ctypes.c_char * RS_ERROR_MSG_MAX)]


class RsRouteOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("trace", ctypes.c_char_p),
        ("router", ctypes.c_char_p),
        ("metrics", ctypes.c_char_p),
        ("reference", ctypes.c_char_p),
        ("reference_trace", ctypes.c_char_p),
        ("decisions", ctypes.c_char_p),
        ("results_csv", ctypes.c_char_p),
        ("batch_tokens", ctypes.c_longlong),
        ("threads", ctypes.c_longlong),
        ("chunk_tokens", ctypes.c_longlong),
        ("memory_mb", ctypes.c_double),
        ("skip_nonfinite", ctypes.c_int),
        ("progress", ctypes.c_int),
        ("force", ctypes.c_int),
        ("by", ctypes.c_char_p),
        ("device", ctypes.c_char_p),
    ]


# Pointers are c_void_p so that reading one gives a plain address (or None)
# from which numpy views are made without copies.
class RsBlock(ctypes.Structure):
    _fields_ = [
        ("layer", ctypes.c_int),
        ("num_layers", ctypes.c_int),
        ("num_experts", ctypes.c_int),
        ("kmax", ctypes.c_int),
        ("t0", ctypes.c_int64),
        ("n", ctypes.c_int),
        ("logits", ctypes.c_void_p),
        ("logits_stride", ctypes.c_size_t),
        ("probs", ctypes.c_void_p),
        ("probs_stride", ctypes.c_size_t),
        ("token_ids", ctypes.c_void_p),
        ("sequence", ctypes.c_void_p),
        ("position", ctypes.c_void_p),
        ("phase", ctypes.c_void_p),
        ("ids", ctypes.c_void_p),
        ("weights", ctypes.c_void_p),
        ("out_stride", ctypes.c_size_t),
        ("params", ctypes.c_char_p),
        ("user", ctypes.c_void_p),
    ]


# int (*)(rs_block *block, char *msg, size_t msg_size)
RS_BLOCK_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(RsBlock), ctypes.c_void_p, ctypes.c_size_t)


class RsCallbackRouter(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("name", ctypes.c_char_p),
        ("summary", ctypes.c_char_p),
        ("kmax", ctypes.c_int),
        ("stateful", ctypes.c_int),
        ("params", ctypes.c_char_p),
        ("fn", RS_BLOCK_FN),
        ("user", ctypes.c_void_p),
    ]


# The structures rs_struct_sizes reports after the plugin ones, in order.
_EMBED_STRUCTS = [("rs_route_options", RsRouteOptions), ("rs_block", RsBlock),
                  ("rs_callback_router", RsCallbackRouter)]

_ERR = ctypes.POINTER(RsError)
_PROTOTYPES = {
    "rs_version": (ctypes.c_char_p, []),
    "rs_struct_sizes": (ctypes.POINTER(ctypes.c_size_t), [ctypes.POINTER(ctypes.c_int)]),
    "rs_free": (None, [ctypes.c_void_p]),
    "rs_route_options_init": (None, [ctypes.POINTER(RsRouteOptions)]),
    "rs_route": (ctypes.c_int, [ctypes.POINTER(RsRouteOptions), _ERR]),
    "rs_run_config": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_longlong, ctypes.c_int, ctypes.c_int,
                                     ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), _ERR]),
    "rs_plot": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                               ctypes.c_char_p, ctypes.c_int, _ERR]),
    "rs_trace_info_json": (ctypes.c_void_p, [ctypes.c_char_p, _ERR]),
    "rs_routers_json": (ctypes.c_void_p, [_ERR]),
    "rs_metrics_json": (ctypes.c_void_p, [_ERR]),
    "rs_load_plugin": (ctypes.c_int, [ctypes.c_char_p, _ERR]),
    "rs_callback_router_register": (ctypes.c_int, [ctypes.POINTER(RsCallbackRouter), _ERR]),
}

_lock = threading.Lock()
_loaded = None
_loaded_path = None


def candidates():
    """Where the library is looked for, in order: (path, where it came from).
    $ROUTESIM_LIB alone when it is set."""
    env = os.environ.get(ENV_VAR)
    if env:
        return [(env, ENV_VAR)]
    found = [(os.path.join(_PACKAGE_DIR, "libroutesim.so"), "the package"),
             (os.path.normpath(os.path.join(_PACKAGE_DIR, "..", "..", "build", "libroutesim.so")), "the checkout")]
    system = ctypes.util.find_library("routesim")
    if system:
        found.append((system, "the system"))
    return found


def _locate():
    env = os.environ.get(ENV_VAR)
    if env:
        if not os.path.isfile(env):
            raise RoutesimError(f"{ENV_VAR}={env}: no such file")
        return env
    places = candidates()
    for path, where in places:
        if where == "the system" or os.path.isfile(path):
            return path
    looked = ", ".join(p for p, _ in places)
    raise RoutesimError(f"libroutesim.so not found (looked in {looked} and the system library path): "
                        f"build it with `make` or set {ENV_VAR}")


def _check_version(cdll, path):
    try:
        fn = cdll.rs_version
    except AttributeError:
        raise RoutesimError(f"{path}: not a routesim library (no rs_version); "
                            f"the routesim Python package is {__version__}") from None
    fn.restype, fn.argtypes = ctypes.c_char_p, []
    version = (fn() or b"").decode("utf-8", "replace")
    if version != __version__:
        raise RoutesimError(f"{path} is libroutesim {version}, but the routesim Python package is {__version__}: "
                            f"use a library of the same version (rebuild with `make` or set {ENV_VAR})")


def _check_sizes(cdll, path):
    count = ctypes.c_int(0)
    sizes = cdll.rs_struct_sizes(ctypes.byref(count))
    if count.value != _NUM_PLUGIN_STRUCTS + len(_EMBED_STRUCTS):
        raise RoutesimError(f"{path}: the library lists {count.value} shared structures, the routesim Python "
                            f"package {_NUM_PLUGIN_STRUCTS + len(_EMBED_STRUCTS)} (_lib.py): the package and the "
                            f"library come from different sources")
    ours = [("rs_error", 0, RsError)]
    for i, (name, struct) in enumerate(_EMBED_STRUCTS):
        ours.append((name, _NUM_PLUGIN_STRUCTS + i, struct))
    for name, index, struct in ours:
        if sizes[index] != ctypes.sizeof(struct):
            raise RoutesimError(f"{path}: sizeof({name}) is {sizes[index]} in the library but "
                                f"{ctypes.sizeof(struct)} in the routesim Python package (_lib.py): "
                                f"the package and the library come from different sources")


def _load():
    path = _locate()
    try:
        # RTLD_GLOBAL: plugins loaded later (load_plugin) resolve the public
        # API against this library, as they do against the binary.
        cdll = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        raise RoutesimError(f"{path}: cannot load libroutesim: {e}") from None
    _check_version(cdll, path)
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(cdll, name)
        except AttributeError:
            raise RoutesimError(f"{path}: libroutesim {__version__} lacks {name}") from None
        fn.restype, fn.argtypes = restype, argtypes
    _check_sizes(cdll, path)
    return cdll, os.path.abspath(path) if os.path.exists(path) else path


def lib():
    """The loaded library (loaded, checked and typed on first use)."""
    global _loaded, _loaded_path
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded, _loaded_path = _load()
    return _loaded


def library_path():
    """The path of the library in use (loading it if needed)."""
    lib()
    return _loaded_path


def check(rc, err):
    """Raises RoutesimError with the library's message when rc is non-zero."""
    if rc != 0:
        raise RoutesimError(error_message(err))


def error_message(err):
    msg = err.msg.decode("utf-8", "replace")
    return msg or "libroutesim: failed without a message"


def take_string(ptr, err):
    """The text of a char * the library returned (freed with rs_free), or
    RoutesimError when it returned NULL."""
    if not ptr:
        raise RoutesimError(error_message(err))
    try:
        return ctypes.string_at(ptr).decode("utf-8")
    finally:
        lib().rs_free(ptr)


def encode_path(value, what):
    """A path argument as bytes for C (str or os.PathLike), or None."""
    if value is None:
        return None
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(f"{what}: expected a path (str or os.PathLike), got {type(value).__name__}")
    return os.fsencode(value)


def encode_text(value, what):
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{what}: expected a str, got {type(value).__name__}")
    return value.encode("utf-8")
