"""Every config in experiments/ runs, scaled down with --tokens, and makes
its figures: results.csv has rows of every metric family the config asks
for, and the figures are non-empty files (or, without gnuplot, their data
files and scripts are). Trace paths are moved into the test's directory.
Import inputs are found from the repository root, as `routesim run` finds
them when run there: one inside the repository (data/) must exist, one
outside it is skipped when absent."""

import csv
import glob
import json
import os
import shutil

from interop_util import check, run

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
TOKENS = "1500"


def relocated(config, tmp):
    """The config with its traces under tmp and import inputs found from the repository root."""
    for i, t in enumerate(config["traces"]):
        if isinstance(t, str):
            continue
        t["path"] = os.path.join(tmp, f"trace{i}-" + os.path.basename(t["path"]))
        if "import" in t:
            t["import"]["input"] = os.path.normpath(os.path.join(ROOT, t["import"]["input"]))
    return config


def missing_inputs(config):
    return [t["import"]["input"] for t in config["traces"]
            if isinstance(t, dict) and "import" in t and not os.path.exists(t["import"]["input"])]


def families(config):
    out = set()
    for m in config.get("metrics", ["load", "entropy"]):
        out.add(m if isinstance(m, str) else m["name"])
    return out


def test_every_experiment_runs_and_plots(tmp):
    configs = sorted(glob.glob(os.path.join(ROOT, "experiments", "*.json")))
    check(len(configs) >= 8, f"expected the paper configs in experiments/, found {len(configs)}")
    rendering = shutil.which("gnuplot") is not None
    for path in configs:
        name = os.path.basename(path)[:-5]
        with open(path) as f:
            config = relocated(json.load(f), tmp)
        missing = missing_inputs(config)
        shipped = [m for m in missing if not os.path.relpath(m, ROOT).startswith("..")]
        if not check(not shipped, f"experiments/{name}.json: {', '.join(shipped)} missing from the repository"):
            continue
        if missing:
            print(f"skip: experiments/{name}.json needs {', '.join(missing)}")
            continue
        out = os.path.join(tmp, name)
        scaled = os.path.join(tmp, name + ".json")
        with open(scaled, "w") as f:
            json.dump(config, f)
        r = run(["run", scaled, "--tokens", TOKENS, "--output", out, "-q"])
        if not check(r.returncode == 0, f"experiments/{name}.json failed: {r.stderr.strip()[-400:]}"):
            continue
        with open(os.path.join(out, "results.csv")) as f:
            seen = {row["metric"].split(".")[0] for row in csv.DictReader(f)}
        for family in families(config):
            check(family in seen, f"experiments/{name}.json: no {family}.* rows in results.csv")
        if not config.get("plots"):
            continue
        plots = os.path.join(out, "plots")
        scripts = glob.glob(os.path.join(plots, "*.gp"))
        check(len(scripts) > 0, f"experiments/{name}.json: no figure scripts in {plots}")
        for script in scripts:
            stem = script[:-3]
            check(os.path.getsize(stem + ".dat") > 0 if os.path.exists(stem + ".dat") else False,
                  f"{stem}.dat missing or empty")
            if rendering:
                check(os.path.exists(stem + ".png") and os.path.getsize(stem + ".png") > 0,
                      f"{stem}.png missing or empty")
