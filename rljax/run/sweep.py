"""Sweeps: many settings x many seeds of one algorithm, as few compiled batches as possible.

Every (setting, seed) is one run. Settings that differ only in traced hyperparameters share
one static configuration, so all their runs are one batch and one compilation (their
hyperparameters are the batch's leaves); each combination of static fields (layer sizes,
buffer capacity, `num_envs`, ...) is its own batch, run one after another. Runs that met
their stopping rule leave their batch (`rljax.run.loop.chunk_loop`), so a batch costs
about the sum of its runs' steps. Results: one table row per run, and in a sweep folder
`sweep.csv`, `summary.json` (settings ranked by mean final greedy return), `curves.png`,
`heatmap.png` and one run folder per batch under `groups/` (resumable like `train`).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from rljax.core.driver import tile_hparams
from rljax.run import folders
from rljax.run.cache import enable_compile_cache
from rljax.run.loop import Progress, run_batch
from rljax.run.registry import Experiment, _parse, make_experiment, settable

Setting = dict[str, str]  # setting name -> value, as on the command line


class SweepResult(NamedTuple):
    """What `sweep` returns."""

    table: list[dict[str, Any]]  # one row per run: swept values, seed and results
    summary: dict[str, Any]  # settings ranked by mean final greedy return
    folder: Path | None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return str(value)


def expand(
    algo: str,
    preset: str = "default",
    grid: Mapping[str, Sequence[Any]] | None = None,
    settings: Sequence[Mapping[str, Any]] | None = None,
    random: Mapping[str, tuple[float, float, str]] | None = None,
    samples: int | None = None,
    seed: int = 0,
    env_id: str | None = None,
) -> list[Setting]:
    """The list of settings a sweep trains: the product of `grid`'s values, the explicit
    `settings`, or `samples` draws of `random` (`name: (low, high, "log" | "linear")`,
    drawn with NumPy from `seed`). Names are checked against the algorithm's settings;
    an empty grid, a bad range or a missing `samples` is a `ValueError` naming it."""
    given = [x is not None for x in (grid, settings, random)]
    if sum(given) != 1:
        raise ValueError("a sweep needs exactly one of grid, settings or random")
    valid = settable(algo, preset, env_id)
    if grid is not None:
        names = list(grid)
    elif random is not None:
        names = list(random)
    else:
        names = list({k: 0 for s in settings for k in s})
    for name in names:
        if name not in valid:
            raise ValueError(
                f"unknown setting {name!r} for {algo}; valid settings: {', '.join(valid)}"
            )
    if grid is not None:
        if not grid:
            raise ValueError("the sweep grid is empty: give at least one name=v1,v2,...")
        for name, values in grid.items():
            if len(values) == 0:
                raise ValueError(f"the sweep grid gives {name!r} no values")
        product = itertools.product(*(list(v) for v in grid.values()))
        return [{n: _as_text(v) for n, v in zip(grid, combo, strict=True)} for combo in product]
    if settings is not None:
        if not settings:
            raise ValueError("the sweep's settings list is empty")
        return [{n: _as_text(v) for n, v in s.items()} for s in settings]
    if not samples or samples < 1:
        raise ValueError(f"a random sweep needs samples >= 1, got {samples!r}")
    rng = np.random.default_rng(seed)
    columns = {}
    for name, spec in random.items():
        low, high, scale = (*spec, "linear")[:3] if len(spec) == 2 else spec
        if scale not in ("log", "linear"):
            raise ValueError(f"random {name}: scale must be 'log' or 'linear', got {scale!r}")
        if not low < high or (scale == "log" and low <= 0):
            raise ValueError(f"random {name}: need low < high (and low > 0 for log), got {spec}")
        u = rng.uniform(size=samples)
        values = (
            np.exp(np.log(low) + u * (np.log(high) - np.log(low)))
            if scale == "log"
            else (low + u * (high - low))
        )
        integer = isinstance(valid[name][0], int) and not isinstance(valid[name][0], bool)
        columns[name] = [str(round(v)) if integer else f"{v:.6g}" for v in values]
    return [{n: columns[n][i] for n in columns} for i in range(samples)]


class _Group(NamedTuple):
    experiment: Experiment
    settings: list[Setting]
    keys: Any  # [R]
    hparams: Any  # leaves [R, ...]
    labels: list[dict[str, Any]]  # per run: swept values and seed


def _groups(
    algo: str,
    env_id: str | None,
    preset: str,
    settings: list[Setting],
    seeds: int,
    seed: int,
    overrides: Mapping[str, str],
) -> list[_Group]:
    """Split settings by their static fields and build every batch (checking every value)
    before anything compiles."""
    valid = settable(algo, preset, env_id)
    by_static: dict[tuple, list[Setting]] = {}
    for s in settings:
        static = tuple(sorted((k, v) for k, v in s.items() if valid[k][2] != "hparams"))
        by_static.setdefault(static, []).append(s)
    seed_keys = jax.random.split(jax.random.key(seed), seeds)
    groups = []
    for static, members in by_static.items():
        experiment = make_experiment(algo, env_id, preset, {**overrides, **dict(static)})
        hps, keys, labels = [], [], []
        for s in members:
            traced = {
                k: _parse(k, v, valid[k][0]) for k, v in s.items() if valid[k][2] == "hparams"
            }
            hp = experiment.hparams.replace(**traced) if traced else experiment.hparams
            for j in range(seeds):
                hps.append(tile_hparams(hp, 1))
                keys.append(j)
                labels.append({**s, "seed": j})
        hparams = jax.tree.map(lambda *xs: np.concatenate(xs), *hps)
        groups.append(_Group(experiment, members, seed_keys[np.array(keys)], hparams, labels))
    return groups


def sweep(
    algo: str,
    env_id: str | None = None,
    *,
    grid: Mapping[str, Sequence[Any]] | None = None,
    settings: Sequence[Mapping[str, Any]] | None = None,
    random: Mapping[str, tuple[float, float, str]] | None = None,
    samples: int | None = None,
    seeds: int = 1,
    preset: str = "default",
    seed: int = 0,
    overrides: Mapping[str, str] | None = None,
    devices: Sequence[Any] | str | int | None = "auto",
    out: str | os.PathLike | None = None,
    resume: bool = False,
    force: bool = False,
    on_chunk: Callable[[Progress], None] | None = None,
    on_group: Callable[[int, int, int], None] | None = None,
    compile_cache: bool = True,
) -> SweepResult:
    """Train every (setting, seed) of a sweep; see the module docstring.

    Args:
      algo, env_id, preset: as for `rljax train`.
      grid: `{name: [values]}`, every combination; or `settings`: a list of `{name: value}`;
        or `random`: `{name: (low, high, "log" | "linear")}` with `samples` draws.
      seeds: seeds per setting; seed `j` of every setting uses the same key, the `j`-th of
        `jax.random.split(jax.random.key(seed), seeds)`, as `train --seed SEED` does.
      overrides: `--set`-style settings applied to every run (e.g. the budget).
      devices: lay each batch out across these devices (`rljax.run.sharding.resolve_devices`:
        by default every CPU core's device; `"all"`, a count, a list, or None for one device),
        padded with copies that are computed and dropped.
      out: a sweep folder to write (None: results in memory only); `resume` continues an
        interrupted one, `force` moves an earlier one aside.
      on_chunk, on_group: progress callbacks (`on_group(index, groups, runs)`).
      compile_cache: turn on JAX's persistent compilation cache (`rljax.run.cache`).

    Unknown names, empty grids and values out of range are `ValueError`s raised before
    anything compiles.
    """
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an integer >= 1, got {seeds!r}")
    swept = expand(algo, preset, grid, settings, random, samples, seed, env_id)
    groups = _groups(algo, env_id, preset, swept, seeds, seed, dict(overrides or {}))
    if compile_cache:
        enable_compile_cache()
    folder = None if out is None else Path(out)
    if folder is not None:
        plan = {"algo": algo, "env": groups[0].experiment.env_id, "preset": preset,
                "seeds": seeds, "seed": seed, "overrides": dict(overrides or {}),
                "settings": swept}  # fmt: skip
        _prepare(folder, plan, resume, force)
    table: list[dict[str, Any]] = []
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for gi, group in enumerate(groups):
        if on_group is not None:
            on_group(gi, len(groups), len(group.labels))
        R = len(group.labels)
        if folder is None:
            result = run_batch(
                group.experiment.trainer, group.keys, group.hparams, on_chunk, devices=devices
            )
            metrics, returns = result.metrics, result.eval_returns.mean(axis=1)
            stop = np.asarray(result.state.stop_step)
        else:
            sub = folder / "groups" / f"g{gi:03d}"
            if not (resume and (sub / "summary.json").exists()):
                summary = folders.run_in_folder(
                    group.experiment, sub, R, seed, resume=resume, on_chunk=on_chunk,
                    runs=(group.keys, group.hparams, group.labels), devices=devices,
                    plot=False,
                )  # fmt: skip
                if summary.get("interrupted"):
                    return SweepResult(table, {"interrupted": True, "group": gi}, folder)
            summary = json.loads((sub / "summary.json").read_text())
            metrics = folders.read_metrics(sub)
            returns = np.asarray(summary["eval_return"]["per_seed"])
            stop = np.asarray(summary["stop_step_per_seed"])
        for i, label in enumerate(group.labels):
            curve = metrics["episode_return_mean"][i]
            ran = metrics["env_steps"][i] >= 0
            table.append({
                **label,
                "final_return": float(returns[i]),
                "auc": float(np.nanmean(curve[ran])) if np.any(~np.isnan(curve[ran])) else math.nan,
                "stop_step": int(stop[i]),
                "env_steps": int(np.nanmax(np.where(ran, metrics["env_steps"][i], -1))),
            })  # fmt: skip
        for s in group.settings:
            rows = [i for i, label in enumerate(group.labels) if _same(label, s)]
            curves[_name(s)] = (metrics["env_steps"][rows], metrics["episode_return_mean"][rows])
    summary = rank(table, list(swept[0]))
    if folder is not None:
        write_outputs(folder, table, summary, curves, list(swept[0]))
    return SweepResult(table, summary, folder)


def _same(label: Mapping[str, Any], setting: Setting) -> bool:
    return all(label[k] == v for k, v in setting.items())


def _name(setting: Setting) -> str:
    return " ".join(f"{k}={v}" for k, v in setting.items())


def rank(table: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Settings ranked by the mean over seeds of the final greedy return (spread over seeds
    beside it)."""
    ranked = []
    for key, rows in itertools.groupby(
        sorted(table, key=lambda r: tuple(r[n] for n in names)),
        key=lambda r: tuple(r[n] for n in names),
    ):
        rows = list(rows)
        final = np.array([r["final_return"] for r in rows])
        auc = np.array([r["auc"] for r in rows])
        stops = [r["stop_step"] for r in rows]
        ranked.append({
            "setting": dict(zip(names, key, strict=True)),
            "seeds": len(rows),
            "final_return_mean": float(final.mean()),
            "final_return_std": float(final.std()),
            "final_return_min": float(final.min()),
            "final_return_max": float(final.max()),
            "auc_mean": float(np.nanmean(auc)) if np.any(~np.isnan(auc)) else math.nan,
            "stopped": int(sum(s >= 0 for s in stops)),
        })  # fmt: skip
    ranked.sort(key=lambda r: -r["final_return_mean"])
    return {"runs": len(table), "settings": len(ranked), "ranked": ranked}


def write_outputs(
    folder: Path,
    table: list[dict[str, Any]],
    summary: dict[str, Any],
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    names: list[str],
) -> None:
    """`sweep.csv`, `summary.json`, `curves.png` and `heatmap.png` in `folder`."""
    from rljax.run.plotting import plot_learning_curves

    columns = [*names, "seed", "final_return", "auc", "stop_step", "env_steps"]
    with (folder / "sweep.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in table:
            writer.writerow([row[c] for c in columns])
    folders._write_json(folder / "summary.json", summary)
    best = [_name(r["setting"]) for r in summary["ranked"][:8]]
    shown = {name: curves[name] for name in best}
    title = "best 8 settings" if len(curves) > 8 else "every setting"
    plot_learning_curves(shown, folder / "curves.png", title=f"sweep: {title} (mean, min-max)")
    heatmap(summary, names, folder / "heatmap.png")


def heatmap(summary: dict[str, Any], names: list[str], path: Path) -> None:
    """Mean final return over the two main swept axes (the first two names with more than
    one value; a single row for a one-axis sweep; other axes averaged)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = {n: sorted({r["setting"][n] for r in summary["ranked"]}, key=_sort_key) for n in names}
    axes = [n for n in names if len(values[n]) > 1][:2] or names[:1]
    ys = values[axes[0]]
    xs = values[axes[1]] if len(axes) > 1 else [""]
    grid = np.full((len(ys), len(xs)), np.nan)
    count = np.zeros_like(grid)
    for r in summary["ranked"]:
        i = ys.index(r["setting"][axes[0]])
        j = xs.index(r["setting"][axes[1]]) if len(axes) > 1 else 0
        grid[i, j] = np.nansum([grid[i, j], r["final_return_mean"]])
        count[i, j] += 1
    grid = np.where(count > 0, grid / np.maximum(count, 1), np.nan)
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(xs), 1.2 + 0.5 * len(ys)))
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    for i in range(len(ys)):
        for j in range(len(xs)):
            ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", color="white")
    ax.set_yticks(range(len(ys)), ys)
    ax.set_ylabel(axes[0])
    ax.set_xticks(range(len(xs)), xs)
    if len(axes) > 1:
        ax.set_xlabel(axes[1])
    ax.set_title("mean final greedy return")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _sort_key(value: str) -> tuple:
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def _prepare(folder: Path, plan: dict[str, Any], resume: bool, force: bool) -> None:
    """A sweep folder holds `sweep.json` (the plan); resuming needs the same plan."""
    plan_path = folder / "sweep.json"
    if plan_path.exists():
        if resume:
            saved = json.loads(plan_path.read_text())
            if saved != json.loads(json.dumps(plan)):
                differ = [k for k in plan if saved.get(k) != json.loads(json.dumps(plan[k]))]
                raise ValueError(f"--resume: {folder} holds a sweep with other {', '.join(differ)}")
            return
        if not force:
            raise ValueError(
                f"{folder} holds an earlier sweep; add --resume to continue it, --force to "
                "move it aside, or choose another --out"
            )
        folder.rename(folder.with_name(f"{folder.name}.old-{_stamp()}"))
    folder.mkdir(parents=True, exist_ok=True)
    folders._write_json(plan_path, plan)


def _stamp() -> str:
    import time

    return time.strftime("%Y%m%d-%H%M%S")
