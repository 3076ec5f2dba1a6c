"""Routers written in Python: a function of one block of tokens, registered
with the library as a callback router (rs_callback_router_register).

The engine calls the function for consecutive tokens of one layer at a time,
from its own threads. Every call takes the GIL, so the function's Python code
runs on one thread at a time (the calls are serialised), while the engine's
other work (reading chunks, built-in routers, metrics) goes on in parallel.
numpy and torch release the GIL inside long operations, where two calls on
different blocks may overlap: state shared between calls needs
stateful=True (each layer's blocks then come one after another, in order).
Vectorised numpy over the whole block keeps the time under the GIL short.

The block's arrays are views of the engine's buffers, valid only during the
call: copy what must outlive it."""

import ctypes
import math
import re

import numpy as np

from . import _lib
from .errors import RoutesimError

# The Router registered under each name.
_registry = {}
# Every ctypes callback ever registered, replaced ones too: the library keeps
# replaced descriptors for runs parsed before the replacement, so their
# callbacks must stay callable for the life of the process.
_callbacks = []

_MSG_FALLBACK = "python router failed"
# numpy typestrs in the machine's byte order (the library's arrays are native)
_F32, _I32, _I64, _U8 = (np.dtype(t).str for t in (np.float32, np.int32, np.int64, np.uint8))


def _view(address, shape, row_stride, typestr, itemsize, readonly):
    """A numpy array over memory the library owns: no copy."""
    strides = (row_stride * itemsize, itemsize) if len(shape) == 2 else (itemsize,)
    holder = _ArrayInterface(address, shape, strides, typestr, readonly)
    return np.asarray(holder)


class _ArrayInterface:
    __slots__ = ("__array_interface__",)

    def __init__(self, address, shape, strides, typestr, readonly):
        self.__array_interface__ = {"version": 3, "data": (address, readonly), "shape": shape,
                                    "strides": strides, "typestr": typestr}


def _parse_params(text, declared):
    """block.params ("k=2,mode=x") as a dict of typed values: a declared
    parameter takes the type of its default, others (the capacity stage's)
    the first of int, float, text that reads it."""
    out = {}
    if not text:
        return out
    for item in text.split(","):
        name, _, value = item.partition("=")
        kind = type(declared[name]) if name in declared else None
        out[name] = _typed(value, kind)
    return out


def _typed(value, kind):
    if kind is bool:
        return value in ("true", "1")
    if kind is str:
        return value
    for convert in (int, float):
        if kind in (None, convert):
            try:
                return convert(value)
            except ValueError:
                if kind is convert:
                    break
    if kind is None and value in ("true", "false"):
        return value == "true"
    return value


def _format_value(name, value):
    """A parameter value as spec text (bool as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise ValueError(f"parameter {name}: {value} is not a finite number")
        return repr(float(value))  # "1.0", "1e-05": never read as an integer
    if isinstance(value, str):
        if not value or any(c in value for c in ",=:"):
            raise ValueError(f"parameter {name}: text {value!r} must be non-empty without ',', '=' or ':'")
        return value
    raise TypeError(f"parameter {name}: expected int, float, bool or str, got {type(value).__name__}")


def _text_default_is_typed(value):
    """Whether the library would read a text default as another type."""
    if value in ("true", "false"):
        return True
    try:
        float(value)
        return True
    except ValueError:
        return False


class Block:
    """One layer of n consecutive tokens (global indices t0 .. t0 + n - 1).

    Read-only views: logits [n, E] float32, probs [n, E] float32 (the
    engine's softmax), token_ids [n] int32 (None when the trace has none),
    positions [n] int64 (position in the sequence), sequence [n] int64
    (global sequence index), phase [n] uint8 (0 prefill, 1 decode; None when
    not recorded). Writable views of the output: ids [n, kmax] int32
    (prefilled with -1) and weights [n, kmax] float32 (prefilled with 0).
    Also layer, num_layers, num_experts, kmax, t0, n and params (this run's
    parameters, typed)."""

    __slots__ = ("layer", "num_layers", "num_experts", "kmax", "t0", "n", "logits", "probs", "token_ids",
                 "positions", "sequence", "phase", "ids", "weights", "params")

    def __init__(self, b, declared):
        n, E, kmax = b.n, b.num_experts, b.kmax
        self.layer, self.num_layers, self.num_experts, self.kmax = b.layer, b.num_layers, E, kmax
        self.t0, self.n = b.t0, n
        self.logits = _view(b.logits, (n, E), b.logits_stride, _F32, 4, True)
        self.probs = _view(b.probs, (n, E), b.probs_stride, _F32, 4, True)
        self.token_ids = _view(b.token_ids, (n,), 1, _I32, 4, True) if b.token_ids else None
        self.sequence = _view(b.sequence, (n,), 1, _I64, 8, True)
        self.positions = _view(b.position, (n,), 1, _I64, 8, True)
        self.phase = _view(b.phase, (n,), 1, _U8, 1, True) if b.phase else None
        self.ids = _view(b.ids, (n, kmax), b.out_stride, _I32, 4, False)
        self.weights = _view(b.weights, (n, kmax), b.out_stride, _F32, 4, False)
        self.params = _parse_params((b.params or b"").decode("utf-8"), declared)

    def __repr__(self):
        return f"Block(layer={self.layer}, t0={self.t0}, n={self.n}, experts={self.num_experts}, kmax={self.kmax})"


class BadResult(ValueError):
    """What a router function returned does not fit the block."""


def _as_array(value, what):
    """numpy or torch (without importing torch) to a numpy array."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        value = value.detach()
        if hasattr(value, "cpu"):
            value = value.cpu()
        return value.numpy()
    try:
        return np.asarray(value)
    except Exception as e:
        raise BadResult(f"returned {what} that is not an array: {e}") from None


def _store(block, result):
    """Writes fn's (ids, weights) into the block's outputs; a BadResult
    whose message is the reason otherwise."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise BadResult(f"returned {type(result).__name__}, expected (ids, weights) or None")
    ids, weights = _as_array(result[0], "ids"), _as_array(result[1], "weights")
    n, kmax = block.n, block.kmax
    for name, arr in (("ids", ids), ("weights", weights)):
        if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] > kmax:
            raise BadResult(f"returned {name} of shape {tuple(arr.shape)}, expected ({n}, {kmax})")
    if ids.shape != weights.shape:
        raise BadResult(f"returned ids of shape {tuple(ids.shape)} but weights of shape {tuple(weights.shape)}")
    if ids.dtype.kind not in "iu":
        raise BadResult(f"returned ids of dtype {ids.dtype}, expected an integer dtype")
    if weights.dtype.kind not in "fiu":
        raise BadResult(f"returned weights of dtype {weights.dtype}, expected a float dtype")
    k = ids.shape[1]
    wide = ids.dtype.itemsize > 4 or ids.dtype == np.uint32
    if wide and ids.size and (ids.min() < -1 or ids.max() >= block.num_experts):
        # the engine checks the range of int32 ids; a wider one could wrap into it
        bad = ids[(ids < -1) | (ids >= block.num_experts)].flat[0]
        raise BadResult(f"returned expert id {bad} out of range [-1, {block.num_experts})")
    if ids is not block.ids:
        block.ids[:, :k] = ids
        block.ids[:, k:] = -1
    if weights is not block.weights:
        block.weights[:, :k] = weights
        block.weights[:, k:] = 0


def _write_message(msg, size, text):
    data = text.replace("\n", " ").encode("utf-8", "replace")[:max(size - 1, 0)]
    if size:
        ctypes.memmove(msg, data + b"\0", len(data) + 1)


class Router:
    """A router written in Python, usable wherever a built-in one is (route,
    run configs, references, sweeps; the capacity stage applies).

    fn(block) returns (ids, weights), arrays of shape [n, kmax] or [n, k]
    with k <= kmax (numpy or torch, any integer / float dtype; -1 pads), or
    None after filling block.ids and block.weights itself. params maps each
    parameter to its default (int, float, bool or str); specs and sweeps set
    them ("name:k=3") and fn reads them in block.params. stateful=True: each
    layer's tokens arrive in order, one block after another (no parallel
    slices). Registering a Router of an existing name replaces that router.

    fn runs under the GIL (calls are serialised); an exception or a wrong
    result stops the run with a RoutesimError naming the router, raised
    from the original exception."""

    def __init__(self, fn, name, kmax, stateful=False, params=None, summary=None):
        if not callable(fn):
            raise TypeError(f"Router: fn must be callable, got {type(fn).__name__}")
        if not isinstance(name, str):
            raise TypeError(f"Router: name must be a str, got {type(name).__name__}")
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
            raise ValueError(f"Router: name {name!r} must be letters, digits, '_', '.' or '-'")
        if isinstance(kmax, bool) or not isinstance(kmax, (int, np.integer)):
            raise TypeError(f"Router {name}: kmax must be an int, got {type(kmax).__name__}")
        if kmax < 1:
            raise ValueError(f"Router {name}: kmax must be at least 1, got {kmax}")
        if summary is not None and not isinstance(summary, str):
            raise TypeError(f"Router {name}: summary must be a str, got {type(summary).__name__}")
        params = dict(params or {})
        for key, value in params.items():
            if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ValueError(f"Router {name}: parameter name {key!r} must be an identifier")
            text = _format_value(key, value)
            if isinstance(value, str) and _text_default_is_typed(text):
                raise ValueError(f"Router {name}: parameter {key}: the text default {value!r} reads as a "
                                 f"number or boolean; give it as one")
        self.fn = fn
        self.name = name
        self.kmax = int(kmax)
        self.stateful = bool(stateful)
        self.params = params
        self.summary = summary
        self.error = None  # the exception of the last failing call
        self._register()

    def spec(self, **params):
        """The spec text naming this router with some parameters set:
        router.spec(k=3) -> "name:k=3"."""
        for key in params:
            if key not in self.params:
                known = ", ".join(sorted(self.params)) or "none"
                raise ValueError(f"router {self.name}: unknown parameter {key} (known: {known})")
        if not params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={_format_value(k, v)}" for k, v in params.items())

    def __repr__(self):
        return f"Router({self.name!r}, kmax={self.kmax}, stateful={self.stateful}, params={self.params!r})"

    def _callback(self, block_ptr, msg, msg_size):
        # Nothing may escape a ctypes callback: every failure becomes a
        # message for the engine, and the exception is kept for the caller.
        try:
            block = Block(block_ptr.contents, self.params)
            result = self.fn(block)
            if result is not None:
                _store(block, result)
            return 0
        except BaseException as e:  # noqa: B902 (KeyboardInterrupt too: re-raised by the caller)
            try:
                self.error = e
                text = str(e) if isinstance(e, BadResult) else f"{type(e).__name__}: {e}"
                _write_message(msg, msg_size, text)
            except BaseException:
                try:
                    _write_message(msg, msg_size, _MSG_FALLBACK)
                except BaseException:
                    pass
            return 1

    def _register(self):
        lib = _lib.lib()
        name = self.name.encode("utf-8")
        summary = self.summary.encode("utf-8") if self.summary is not None else None
        params = ",".join(f"{k}={_format_value(k, v)}" for k, v in self.params.items()).encode("utf-8") or None
        fn = _lib.RS_BLOCK_FN(self._callback)
        desc = _lib.RsCallbackRouter(struct_size=ctypes.sizeof(_lib.RsCallbackRouter), name=name, summary=summary,
                                     kmax=self.kmax, stateful=int(self.stateful), params=params, fn=fn, user=None)
        err = _lib.RsError()
        _lib.check(lib.rs_callback_router_register(ctypes.byref(desc), ctypes.byref(err)), err)
        _callbacks.append(fn)
        _registry[self.name] = self


def registered_routers():
    """The Python Routers registered now (the latest of each name)."""
    return list(_registry.values())


def clear_errors(routers):
    for r in routers:
        r.error = None


def raise_failure(message, routers):
    """RoutesimError(message), raised from the exception of the Python
    router that failed, if one did; KeyboardInterrupt and SystemExit
    inside a router are raised as they are."""
    cause = next((r.error for r in routers if r.error is not None and f"router {r.name}:" in message), None)
    if cause is None:
        cause = next((r.error for r in routers if r.error is not None), None)
    clear_errors(routers)
    if isinstance(cause, (KeyboardInterrupt, SystemExit)):
        raise cause
    if cause is not None:
        raise RoutesimError(message) from cause
    raise RoutesimError(message)
