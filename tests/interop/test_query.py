"""Query routing (unit = query): routesim's outcome and curve metrics against
straightforward numpy computations of the papers' formulas, on the decisions
routesim itself made, and against a line-by-line port of RouterBench's
evaluation/AIQ.py. RouteLLM's public outcomes are read from data/routellm
(shipped with the repository: the tests that need them fail without it)."""

import csv
import json
import os

import h5py
import numpy as np

from interop_util import check, run

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("ROUTESIM_SRC", os.path.join(HERE, "..", ".."))
DATA = os.path.join(REPO, "data", "routellm")
MODELS = ["mixtral_8x7b_instruct", "gpt_4_1106_preview"]
PRICES = "mixtral_8x7b_instruct=0.6,gpt_4_1106_preview=30"


def have_data():
    """The shipped RouteLLM outcomes are there; a failure when they are not."""
    return check(os.path.exists(os.path.join(DATA, "mmlu.csv")) and os.path.exists(os.path.join(DATA, "gsm8k.csv")),
                 f"{DATA}: RouteLLM outcomes (mmlu.csv, gsm8k.csv) missing")


def read_results(path):
    """{(run, metric, key): value} of the layer=all rows, plus the runs in order."""
    values, runs = {}, []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["run"] not in runs:
                runs.append(row["run"])
            if row["layer"] == "all":
                values[(row["run"], row["metric"], row["key"])] = float(row["value"])
    return values, runs


def run_config(tmp, name, traces, routers, metrics=("outcome",)):
    cfg = {"name": name, "traces": traces, "routers": routers, "metrics": list(metrics),
           "output": os.path.join(tmp, name)}
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    r = run(["run", path, "-q", "--no-progress"])
    if not check(r.returncode == 0, f"run {name}: {r.stderr.strip()}"):
        return None, None
    return read_results(os.path.join(tmp, name, "results.csv"))


def import_routellm(tmp, which, decontaminate, prices=True):
    out = os.path.join(tmp, f"{which}{'_dc' if decontaminate else ''}.h5")
    args = ["import", "routellm", os.path.join(DATA, which + ".csv"), "-o", out]
    if decontaminate:
        args.append("--decontaminate")
    if prices:
        args += ["--cost", PRICES]
    r = run(args)
    check(r.returncode == 0, f"import {which}: {r.stderr.strip()}")
    return out


def read_outcomes(path):
    with h5py.File(path, "r") as f:
        quality = f["outcome/quality"][...].astype(np.float64)
        cost = f["outcome/cost"][...].astype(np.float64) if "outcome/cost" in f else None
    return quality, cost


def route(tmp, trace, spec, name):
    """Decisions [T, kmax] of one router."""
    out = os.path.join(tmp, name + ".h5")
    r = run(["route", trace, "--router", spec, "--out", out, "--metrics", "none", "--no-progress"])
    if not check(r.returncode == 0, f"route {spec}: {r.stderr.strip()}"):
        return None
    with h5py.File(out, "r") as f:
        return f["decisions/ids"][:, 0, :]


# ---- RouteLLM's formulas (lm-sys/RouteLLM routellm/evals/evaluate.py), in numpy ----

def routellm_apgr(strong_share, accuracy, q_weak, q_strong):
    order = np.argsort(strong_share, kind="stable")
    x, y = np.asarray(strong_share)[order], np.asarray(accuracy)[order]
    auc = np.trapz(y, x)
    weak_auc = np.trapz(np.full(len(x), q_weak), x)
    strong_auc = np.trapz(np.full(len(x), q_strong), x)
    return (auc - weak_auc) / (strong_auc - weak_auc)


def routellm_cpt(strong_share, accuracy, q_weak, q_strong, p):
    order = np.argsort(strong_share, kind="stable")
    return float(np.interp(p * (q_strong - q_weak) + q_weak, np.asarray(accuracy)[order],
                           np.asarray(strong_share)[order]))


# ---- RouterBench evaluation/AIQ.py, ported line by line ----

def get_non_descreasing_convex_hull_of(points):
    convex_hull_points = points
    # Sort by x value (small curves: numpy's default sort is an insertion sort there, i.e. stable)
    convex_hull_points = convex_hull_points[convex_hull_points[:, 0].argsort()]
    new_convex_hull_points = []
    for i in range(len(convex_hull_points)):
        for j in range(i, len(convex_hull_points)):
            x1, y1 = convex_hull_points[i]
            x2, y2 = convex_hull_points[j]
            for k in range(len(convex_hull_points)):
                x, y = convex_hull_points[k]
                if x1 < x < x2:
                    interpolated_y_value = np.interp(x, [x1, x2], [y1, y2])
                    if y < interpolated_y_value:
                        if x not in [mx for mx, _ in new_convex_hull_points]:
                            new_convex_hull_points.append([x, interpolated_y_value])
                        else:
                            for l in range(len(new_convex_hull_points)):
                                x_new, y_new = new_convex_hull_points[l]
                                if x_new == x and y_new < interpolated_y_value:
                                    new_convex_hull_points[l] = [x, interpolated_y_value]
                                    break
                                elif x_new == x and y_new > interpolated_y_value:
                                    new_convex_hull_points[l] = [x, y_new]
                    if y >= interpolated_y_value:
                        if x not in [mx for mx, _ in new_convex_hull_points]:
                            new_convex_hull_points.append([x, y])
                        else:
                            for l in range(len(new_convex_hull_points)):
                                x_new, y_new = new_convex_hull_points[l]
                                if x_new == x and y_new < y:
                                    new_convex_hull_points[l] = [x, y]
                                    break
                                elif x_new == x and y_new > y:
                                    new_convex_hull_points[l] = [x, y_new]
    if convex_hull_points[-1][0] not in [mx for mx, _ in new_convex_hull_points]:
        if convex_hull_points[-1][1] >= new_convex_hull_points[-1][1]:
            new_convex_hull_points.append(convex_hull_points[-1])
    if convex_hull_points[0][0] not in [mx for mx, _ in new_convex_hull_points]:
        new_convex_hull_points = [convex_hull_points[0]] + new_convex_hull_points
    new_convex_hull_points = np.array(new_convex_hull_points)
    convex_hull_points = new_convex_hull_points
    convex_hull_points = convex_hull_points[convex_hull_points[:, 0].argsort()]
    points_to_remove = []
    for i in range(1, len(convex_hull_points)):
        if convex_hull_points[i][1] < convex_hull_points[i - 1][1]:
            points_to_remove.append(i)
    convex_hull_points = np.delete(convex_hull_points, points_to_remove, axis=0)
    return convex_hull_points


def calculate_area_under_curve(points):
    assert points.shape[1] == 2
    return np.trapz(points[:, 1], points[:, 0])


def calc_aiq(curves):
    """calc_AIQ on a list of (total_cost, performance) arrays, without the plot."""
    ndch_list = [get_non_descreasing_convex_hull_of(points) for points in curves]
    max_x_value = max([np.max(ndch[:, 0]) for ndch in ndch_list])
    ndch_list = [np.vstack((ndch, np.array([max_x_value, ndch[-1, 1]]))) for ndch in ndch_list]
    return [calculate_area_under_curve(ndch) / max_x_value for ndch in ndch_list]


# ---- tests ----

def test_routellm_accuracies_and_oracle(tmp):
    """Single-model accuracies and the per-question oracle of RouteLLM's MMLU
    and GSM8K outcomes: metrics.md's numbers (decontaminated) and the data
    README's (all rows), to 5 decimals, and numpy on the CSV."""
    if not have_data():
        return
    published = {  # (rows, Mixtral, GPT-4, oracle)
        ("mmlu", True): (14037, 0.68091, 0.80587, 0.85873),
        ("gsm8k", True): (1307, 0.63734, 0.85769, 0.92961),
        ("mmlu", False): (14042, 0.68081, 0.80580, 0.85864),
        ("gsm8k", False): (1319, 0.63836, 0.85671, 0.92873),
    }
    for (which, dc), (rows, weak, strong, oracle) in published.items():
        trace = import_routellm(tmp, which, dc)
        values, _ = run_config(tmp, f"acc_{which}_{int(dc)}", [trace],
                               [f"fixed:model={MODELS[0]}", f"fixed:model={MODELS[1]}", "oracle"])
        if values is None:
            continue
        got_weak = values[(f"fixed:model={MODELS[0]}", "outcome.quality", "")]
        got_strong = values[(f"fixed:model={MODELS[1]}", "outcome.quality", "")]
        got_oracle = values[("oracle", "outcome.quality", "")]
        check(values[("oracle", "outcome.queries", "")] == rows, f"{which} dc={dc}: rows")
        for name, got, want in (("Mixtral", got_weak, weak), ("GPT-4", got_strong, strong),
                                ("oracle", got_oracle, oracle)):
            check(round(got, 5) == want, f"{which} dc={dc}: {name} {got:.6f}, published {want}")
        # numpy on the CSV itself
        with open(os.path.join(DATA, which + ".csv"), newline="") as f:
            table = [r for r in csv.DictReader(f) if not (dc and r["contaminated"] == "1")]
        a = np.array([[float(r[m]) for m in MODELS] for r in table])
        check(abs(got_weak - a[:, 0].mean()) < 1e-12 and abs(got_strong - a[:, 1].mean()) < 1e-12,
              f"{which}: single models vs numpy")
        check(abs(got_oracle - a.max(axis=1).mean()) < 1e-12, f"{which}: oracle vs numpy")
        # the oracle's cost: the cheaper model wherever it is right
        oracle_cost = np.where(a[:, 0] > 0, 0.6, np.where(a[:, 1] > 0, 30.0, 0.0)).astype(np.float32).mean()
        check(abs(values[("oracle", "outcome.cost_mean", "")] - oracle_cost) < 1e-4, f"{which}: oracle cost")


def test_random_router_apgr_within_bootstrap_interval_of_half(tmp):
    """RouteLLM's random router: APGR about 0.5. Five random_mix sweeps (seeds
    0-4, 11 strong shares each) on decontaminated MMLU: routesim's curve.apgr
    equals numpy's APGR on the same decisions, and a bootstrap over questions
    (1000 resamples, the same questions for every seed) puts 0.5 inside the
    95% interval of their mean. (One seed's APGR varies by about 0.01 with the
    random assignment alone: seed 11 on its own gives 0.476.)"""
    if not have_data():
        return
    trace = import_routellm(tmp, "mmlu", True)
    shares = [i / 10 for i in range(11)]
    weights = [f"{1 - s:g}|{s:g}" for s in shares]
    seeds = range(5)
    values, runs = run_config(tmp, "random", [trace],
                              [{"name": "random_mix", "params": {"weights": weights, "seed": seed},
                                "label": f"random{seed}"} for seed in seeds])
    if values is None:
        return
    quality, _ = read_outcomes(trace)
    n = quality.shape[0]
    correct, strong = [], []
    for seed in seeds:
        chosen = []
        for i, w in enumerate(weights):
            ids = route(tmp, trace, f"random_mix:weights={w},seed={seed}", f"random{seed}_{i}")
            if ids is None:
                return
            chosen.append(ids[:, 0])
        chosen = np.array(chosen)  # [points, n]
        correct.append(np.where(chosen == 1, quality[None, :, 1], quality[None, :, 0]))
        strong.append(chosen == 1)
        got = values[(f"random{seed}:weights=*", "curve.apgr", "")]
        mine = routellm_apgr(strong[-1].mean(axis=1), correct[-1].mean(axis=1), quality[:, 0].mean(),
                             quality[:, 1].mean())
        check(abs(mine - got) < 1e-12, f"random seed {seed}: routesim APGR {got!r}, numpy {mine!r}")

    def mean_apgr(idx):
        q_weak, q_strong = quality[idx, 0].mean(), quality[idx, 1].mean()
        return np.mean([routellm_apgr(strong[k][:, idx].mean(axis=1), correct[k][:, idx].mean(axis=1), q_weak,
                                      q_strong) for k in range(len(seeds))])

    whole = mean_apgr(np.arange(n))
    rng = np.random.default_rng(2024)
    boot = np.array([mean_apgr(rng.integers(0, n, n)) for _ in range(1000)])
    low, high = np.percentile(boot, [2.5, 97.5])
    check(low <= 0.5 <= high, f"random APGR {whole:.4f}: 95% bootstrap interval [{low:.4f}, {high:.4f}] misses 0.5")
    print(f"  random router APGR (mean of {len(seeds)} seeds) {whole:.4f}, 95% bootstrap interval "
          f"[{low:.4f}, {high:.4f}]")


def synthetic_pair(n, seed):
    """Two models' 0/1 outcomes and an oracle-like win rate for the strong one."""
    rng = np.random.default_rng(seed)
    weak = (rng.random(n) < 0.6).astype(np.float32)
    strong = np.where(weak > 0, rng.random(n) < 0.9, rng.random(n) < 0.55).astype(np.float32)
    score = (strong - weak) + rng.normal(0, 0.6, n)  # the oracle's view, blurred
    score = np.round(score * 64) / 64                 # ties, as real win rates have
    return np.stack([weak, strong], 1), score.astype(np.float32)


def write_query_trace(path, quality, logits=None, cost=None, names=None):
    n, e = quality.shape
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "routesim-trace"
        f.attrs["format_version"] = 1
        f.attrs["num_layers"] = 1
        f.attrs["num_experts"] = e
        f.attrs["unit"] = "query"
        if names:
            f.attrs["expert_names"] = names
        f.create_dataset("sequences/offsets", data=np.arange(n + 1, dtype=np.int64))
        f.create_dataset("outcome/quality", data=np.asarray(quality, np.float32))
        if logits is not None:
            f.create_dataset("router/logits", data=np.asarray(logits, np.float32).reshape(n, 1, e))
        if cost is not None:
            f.create_dataset("outcome/cost", data=np.asarray(cost, np.float32))


def test_oracle_score_apgr_and_cpt_match_numpy(tmp):
    """win_rate over RouteLLM's 11 quantile thresholds of an oracle-like
    score: curve.apgr and curve.cpt (p = 0.2, 0.5, 0.8) equal numpy's RouteLLM
    formulas on the decisions routesim made, and those decisions are
    RouteLLM's selection (score >= quantile, > at the last one)."""
    n = 3000
    quality, score = synthetic_pair(n, 5)
    quality64 = quality.astype(np.float64)
    logits = np.stack([np.zeros(n, np.float32), score], 1)
    trace = os.path.join(tmp, "oracle_score.h5")
    write_query_trace(trace, quality, logits=logits, cost=np.array([1, 20], np.float32))
    qs = [round(i / 10, 1) for i in range(11)]
    cfg = [{"name": "win_rate", "params": {"strong": "1", "weak": "0", "tau_quantile": qs}}]
    values, runs = run_config(tmp, "oracle_score", [trace], cfg,
                              metrics=[{"name": "outcome", "params": {"p": [0.2, 0.5, 0.8]}}])
    if values is None:
        return
    sweep = [r for r in runs if r.endswith("tau_quantile=*")][0]
    thresholds = np.quantile(score.astype(np.float64), qs)  # what pd.qcut's bins are
    acc, share = [], []
    for i, q in enumerate(qs):
        ids = route(tmp, trace, f"win_rate:strong=1,weak=0,tau_quantile={q:g}", f"wr{i}")
        if ids is None:
            return
        w = score.astype(np.float64) - 0.0
        selection = w >= thresholds[i] if i != len(qs) - 1 else w > thresholds[i]
        check(np.array_equal(ids[:, 0] == 1, selection), f"tau_quantile={q}: not RouteLLM's selection")
        picked = quality64[np.arange(n), ids[:, 0]]
        acc.append(picked.mean())
        share.append((ids[:, 0] == 1).mean())
    q_weak, q_strong = quality64[:, 0].mean(), quality64[:, 1].mean()
    want = routellm_apgr(share, acc, q_weak, q_strong)
    got = values[(sweep, "curve.apgr", "")]
    check(abs(got - want) < 1e-12, f"oracle-score APGR: routesim {got!r}, numpy {want!r}")
    check(want > 0.6, f"an oracle-like score should beat random (APGR {want})")
    for p in (0.2, 0.5, 0.8):
        want_cpt = routellm_cpt(share, acc, q_weak, q_strong, p)
        got_cpt = values[(sweep, "curve.cpt", f"p={p:g}")]
        check(abs(got_cpt - want_cpt) < 1e-12, f"CPT({p}): routesim {got_cpt!r}, numpy {want_cpt!r}")


def test_aiq_matches_routerbench_port(tmp):
    """curve.aiq against the port of RouterBench's AIQ.py on curves with
    duplicate costs and non-monotone qualities: each curve is a sweep of
    `fixed` over models whose quality and cost are constant."""
    rng = np.random.default_rng(7)
    tested = 0
    for trial in range(120):
        m = int(rng.integers(6, 12))
        xs = rng.integers(0, 7, m).astype(np.float64)     # duplicate costs
        ys = rng.integers(0, 17, m).astype(np.float64) / 16  # non-monotone qualities
        split = int(rng.integers(2, m - 2))                   # two compared curves
        curves = [np.stack([xs[:split], ys[:split]], 1), np.stack([xs[split:], ys[split:]], 1)]
        try:
            with np.errstate(invalid="ignore", divide="ignore"):
                want = calc_aiq(curves)
        except (IndexError, ValueError):
            continue  # the reference raises on this draw (e.g. no point between two others)
        if not np.all(np.isfinite(want)):
            continue
        n = 4
        quality = np.tile(ys, (n, 1)).astype(np.float32)
        cost = np.tile(xs / n, (n, 1)).astype(np.float32)
        trace = os.path.join(tmp, f"aiq{trial}.h5")
        write_query_trace(trace, quality, cost=cost)
        routers = [{"name": "fixed", "params": {"model": [str(i) for i in range(split)]}, "label": "a"},
                   {"name": "fixed", "params": {"model": [str(i) for i in range(split, m)]}, "label": "b"}]
        values, _ = run_config(tmp, f"aiq{trial}", [trace], routers)
        if values is None:
            return
        got = [values[("a:model=*", "curve.aiq", "")], values[("b:model=*", "curve.aiq", "")]]
        check(np.allclose(got, want, rtol=0, atol=1e-12), f"AIQ trial {trial}: routesim {got}, port {want}")
        tested += 1
    check(tested >= 25, f"only {tested} AIQ trials ran")
    print(f"  AIQ equal to the port on {tested} pairs of curves")


def test_bad_outcome_data(tmp):
    """A query nobody was evaluated on is left out and counted; a negative
    cost, a NaN cost and float64 qualities are refused naming the file and
    the dataset; an importer table missing a model column is refused."""
    quality = np.array([[1, 0], [np.nan, np.nan], [0, 1]], np.float32)
    good = os.path.join(tmp, "nan_row.h5")
    write_query_trace(good, quality, cost=np.array([1, 2], np.float32))
    values, _ = run_config(tmp, "nan_row", [good], ["fixed:model=1", "oracle"])
    if values is not None:
        check(values[("oracle", "outcome.skipped", "")] == 1, "all-NaN row not counted as skipped")
        check(values[("oracle", "outcome.queries", "")] == 2, "all-NaN row evaluated")
        check(values[("fixed:model=1", "outcome.quality", "")] == 0.5, "fixed quality over the scored rows")
    for name, cost, needle in (("negative", [1, -2], "/outcome/cost: negative value -2 at model 1"),
                               ("nan", [1, np.nan], "/outcome/cost: NaN at model 1")):
        path = os.path.join(tmp, f"{name}_cost.h5")
        write_query_trace(path, quality, cost=np.array(cost, np.float32))
        r = run(["route", path, "--router", "oracle", "--metrics", "none", "--no-progress"], expect_failure=True)
        check(r.returncode != 0 and needle in r.stderr and path in r.stderr, f"{name} cost: {r.stderr.strip()}")
    path = os.path.join(tmp, "f64.h5")
    write_query_trace(path, quality)
    with h5py.File(path, "a") as f:
        del f["outcome/quality"]
        f.create_dataset("outcome/quality", data=quality.astype(np.float64))
    r = run(["route", path, "--router", "oracle", "--metrics", "none", "--no-progress"], expect_failure=True)
    check(r.returncode != 0 and "/outcome/quality: dtype is float64" in r.stderr, f"float64: {r.stderr.strip()}")
    table = os.path.join(tmp, "rb.csv")
    with open(table, "w") as f:
        f.write("eval_name,m1,m1|total_cost,m2|total_cost\nmmlu,1,0.1,0.2\n")
    r = run(["import", "routerbench", table, "-o", os.path.join(tmp, "rb.h5")], expect_failure=True)
    check(r.returncode != 0 and "column 'm2' missing" in r.stderr, f"missing model column: {r.stderr.strip()}")
