"""results.csv as a pandas DataFrame, parsed exactly.

The columns are those of results.csv (docs/config.md#results):
run, trace, router, params, metric, key (str; "" when empty), layer (int64;
ALL_LAYERS = -1 for the aggregate over layers, "all" in the file) and value
(float64, read back bit for bit from its %.17g text; nan where undefined)."""

import os

import numpy as np
import pandas as pd

from .errors import RoutesimError

COLUMNS = ["run", "trace", "router", "params", "metric", "key", "layer", "value"]
TEXT_COLUMNS = COLUMNS[:6]
ALL_LAYERS = -1


def empty_results():
    df = pd.DataFrame({c: pd.Series(dtype=object) for c in TEXT_COLUMNS})
    df["layer"] = pd.Series(dtype=np.int64)
    df["value"] = pd.Series(dtype=np.float64)
    return df


def _layers(column, path):
    out = np.empty(len(column), np.int64)
    for i, text in enumerate(column):
        if text == "all":
            out[i] = ALL_LAYERS
            continue
        try:
            out[i] = int(text)
        except ValueError:
            raise RoutesimError(f"{path}: line {i + 2}: layer: expected an integer or 'all', got '{text}'") from None
    return out


def read_csv(path):
    """One results.csv file as a DataFrame."""
    path = os.fspath(path)
    try:
        df = pd.read_csv(path, dtype={**{c: str for c in TEXT_COLUMNS + ["layer"]}, "value": np.float64},
                         keep_default_na=False, na_values={"value": ["nan", "-nan", "NaN"]},
                         float_precision="round_trip")
    except FileNotFoundError:
        raise RoutesimError(f"{path}: no such file") from None
    except (ValueError, pd.errors.ParserError) as e:
        raise RoutesimError(f"{path}: not a results.csv: {str(e).splitlines()[0]}") from None
    if list(df.columns) != COLUMNS:
        raise RoutesimError(f"{path}: columns are {','.join(map(str, df.columns))}, expected {','.join(COLUMNS)}")
    if df.empty:
        return empty_results()
    df["layer"] = _layers(df["layer"], path)
    return df


def read_results(path):
    """The results of a run: a results directory (its results.csv) or a
    results.csv file, as a DataFrame."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"read_results: expected a path, got {type(path).__name__}")
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "results.csv")
    return read_csv(path)
