"""What the library knows: a trace's description (info), the routers and
metric families (routers, metrics), and plugins that add to them."""

import ctypes
import json

import pandas as pd

from . import _lib

ROUTER_FLAGS = ["causal", "stateful", "stochastic", "query", "grouped", "token_choice"]


def _json(fn, *args):
    err = _lib.RsError()
    return json.loads(_lib.take_string(fn(*args, ctypes.byref(err)), err))


def info(trace):
    """The description `routesim info` gives, after full validation, as a
    dict: path, unit, model, num_tokens, num_layers, num_experts,
    num_sequences, top_k, scoring, norm_topk, n_group, topk_group,
    routed_scaling_factor (None where absent), logits_dtype, recorded_k and
    the has_* flags."""
    path = _lib.encode_path(trace, "trace")
    if path is None:
        raise TypeError("trace: expected a path, got None")
    return _json(_lib.lib().rs_trace_info_json, path)


def _param_text(params):
    return ",".join(f"{p['name']}={p['default']}" for p in params if p.get("default") is not None)


def _needs(needs):
    return ",".join(k for k, v in needs.items() if v)


def routers():
    """One row per router and per preset: name, summary, preset_of ("" for
    a router), params (the defaults, or the preset's settings, as spec
    text), the flags (one bool column each), needs, formula, source and
    param_defs (the parameter table as a list of dicts)."""
    data = _json(_lib.lib().rs_routers_json)
    rows, by_name = [], {}
    for r in data["routers"]:
        row = {"name": r["name"], "summary": r.get("summary") or "", "preset_of": "",
               "params": _param_text(r.get("params", []))}
        row.update({f: bool(r.get("flags", {}).get(f, False)) for f in ROUTER_FLAGS})
        row.update({"needs": _needs(r.get("needs", {})), "formula": r.get("formula") or "",
                    "source": r.get("source") or "", "param_defs": r.get("params", [])})
        by_name[r["name"]] = row
        rows.append(row)
    for p in data.get("presets", []):
        base = by_name.get(p.get("preset_of"), {})
        row = {"name": p["name"], "summary": p.get("summary") or "", "preset_of": p.get("preset_of") or "",
               "params": p.get("preset_params") or ""}
        row.update({f: base.get(f, False) for f in ROUTER_FLAGS})
        row.update({"needs": base.get("needs", ""), "formula": base.get("formula", ""),
                    "source": p.get("source") or "", "param_defs": base.get("param_defs", [])})
        rows.append(row)
    return pd.DataFrame(rows, columns=["name", "summary", "preset_of", "params", *ROUTER_FLAGS, "needs", "formula",
                                       "source", "param_defs"])


def metrics():
    """One row per metric output: name ("load.maxvio"), family, definition,
    layer_all (how the "all" row combines the layers), and the family's
    summary, params (defaults as spec text), needs, needs_reference,
    sequential and source."""
    rows = []
    for fam in _json(_lib.lib().rs_metrics_json):
        common = {"family": fam["name"], "summary": fam.get("summary") or "",
                  "params": _param_text(fam.get("params", [])), "needs": _needs(fam.get("needs", {})),
                  "needs_reference": bool(fam.get("needs_reference", False)),
                  "sequential": bool(fam.get("sequential", False)), "source": fam.get("source") or ""}
        for out in fam.get("outputs", []):
            rows.append({"name": out["name"], "definition": out.get("definition") or "",
                         "layer_all": out.get("layer_all") or "", **common})
    return pd.DataFrame(rows, columns=["name", "family", "definition", "layer_all", "summary", "params", "needs",
                                       "needs_reference", "sequential", "source"])


def load_plugin(path):
    """Loads a plugin (a shared object adding routers and metric families),
    as --plugin does."""
    encoded = _lib.encode_path(path, "path")
    if encoded is None:
        raise TypeError("path: expected a path, got None")
    err = _lib.RsError()
    _lib.check(_lib.lib().rs_load_plugin(encoded, ctypes.byref(err)), err)
