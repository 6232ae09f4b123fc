"""Run folders: `config.json`, `metrics.csv`, `checkpoints/`, `curve.png`, `summary.json`.

A run folder holds one batch of runs of one experiment (`rljax.run.registry`), trained by
the one chunk loop (`rljax.run.loop.chunk_loop`), checkpointed atomically and resumable
exactly.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rljax.core.driver import RunState, tile_hparams
from rljax.run import checkpoint
from rljax.run.loop import Progress, chunk_loop, eval_keys, jitted
from rljax.run.plotting import plot_learning_curves
from rljax.run.registry import algo as find_algo

METRIC_COLUMNS = (
    "seed",
    "chunk",
    "env_steps",
    "episodes",
    "episode_return_mean",
    "episode_return_min",
    "episode_return_max",
    "episode_length_mean",
)
SUMMARY_KEYS = (
    "algo",
    "env",
    "num_seeds",
    "env_steps_per_seed",
    "compile_seconds",
    "train_seconds",
    "env_steps_per_second",
    "eval_return",
    "versions",
)


def make_summary(
    algo: str,
    env: str,
    env_steps: np.ndarray,
    eval_returns: np.ndarray,
    compile_seconds: float,
    train_seconds: float,
) -> dict[str, Any]:
    """The one summary schema (`SUMMARY_KEYS`) of a batch of runs: `env_steps [S]` taken by
    each run, greedy `eval_returns [S, episodes]`."""
    steps = np.asarray(env_steps)
    per_seed = np.asarray(eval_returns).mean(axis=1)
    return {
        "algo": algo,
        "env": env,
        "num_seeds": int(per_seed.shape[0]),
        "env_steps_per_seed": int(steps.max()),
        "compile_seconds": round(compile_seconds, 3),
        "train_seconds": round(train_seconds, 3),
        "env_steps_per_second": round(float(steps.sum()) / max(train_seconds, 1e-9), 1),
        "eval_return": {
            "mean": float(per_seed.mean()),
            "min": float(per_seed.min()),
            "max": float(per_seed.max()),
            "per_seed": per_seed.tolist(),
        },
        "versions": versions(),
    }


def versions() -> dict[str, str]:
    """Versions of rljax and of the libraries a result depends on."""
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version()}
    for name in ("rljax", "jax", "jaxlib", "flax", "optax", "gymnax", "numpy"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "unknown"
    return out


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _keys_to_data(tree: Any) -> Any:
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def _data_to_keys(template: Any, tree: Any) -> Any:
    return jax.tree.map(
        lambda t, x: jax.random.wrap_key_data(x, impl=jax.random.key_impl(t)) if _is_key(t) else x,
        template,
        tree,
    )


def checkpoint_files(folder: str | os.PathLike) -> list[Path]:
    """The run folder's checkpoints, oldest first."""
    return sorted(Path(folder, "checkpoints").glob("chunk_*.ckpt"))


def save_run_state(path: Path, state: RunState, chunk: int, train_seconds: float) -> None:
    """Atomically save the complete training state of every seed after `chunk` chunks."""
    tree = {
        "state": _keys_to_data(state),
        "chunk": np.int64(chunk),
        "train_seconds": np.float64(train_seconds),
    }
    checkpoint.save(path, tree)


def load_run_state(path: Path, template: RunState) -> tuple[RunState, int, float]:
    """Load a checkpoint written by `save_run_state`; `template` gives the structure.
    Raises `checkpoint.CheckpointError` for a corrupt file or another configuration."""
    like = {
        "state": _keys_to_data(template),
        "chunk": np.int64(0),
        "train_seconds": np.float64(0.0),
    }
    tree = checkpoint.load(path, like)
    state = _data_to_keys(template, jax.tree.map(jnp.asarray, tree["state"]))
    return state, int(tree["chunk"]), float(tree["train_seconds"])


def run_in_folder(
    experiment: Any,
    out: str | os.PathLike,
    seeds: int,
    seed: int = 0,
    resume: bool = False,
    checkpoint_every: int = 10,
    keep: int = 3,
    on_chunk: Callable[[Progress], None] | None = None,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train `experiment` (`rljax.run.registry.Experiment`) for `seeds` seeds into `out`.

    Writes `config.json`, appends one row per chunk per seed to `metrics.csv`, saves the
    complete training state (networks, optimizer, replay memory, environments, keys,
    counters) to `checkpoints/` every `checkpoint_every` chunks and at the end, keeping
    the newest `keep`, then writes `curve.png` and `summary.json` (`SUMMARY_KEYS`). An
    algorithm with a `report` (a value table, ...) writes its files too; the returned
    summary then carries its text under `"report"`.

    With `resume`, training continues from the newest checkpoint; on CPU the result is
    bitwise identical to an uninterrupted run. SIGINT/SIGTERM, or `stop_after` chunks,
    end the run at the next chunk boundary after saving a checkpoint; the returned dict
    then has `"interrupted": True` and no summary is written.
    """
    for name, value in (("seeds", seeds), ("checkpoint_every", checkpoint_every), ("keep", keep)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {**experiment.settings(), "num_seeds": seeds, "seed": seed}
    config_path = out / "config.json"
    if resume:
        if not config_path.exists():
            raise ValueError(f"--resume: {out} holds no config.json, nothing to resume")
        saved = json.loads(config_path.read_text())
        differ = [k for k in settings if saved.get(k) != json.loads(json.dumps(settings[k]))]
        if differ:
            raise ValueError(f"--resume: {out} was trained with other settings: {differ}")
    else:
        if checkpoint_files(out):
            raise ValueError(f"{out} already holds checkpoints; use --resume or another --out")
        config_path.write_text(json.dumps({**settings, "versions": versions()}, indent=2))

    trainer = experiment.trainer
    keys = jax.random.split(jax.random.key(seed), seeds)
    hparams = tile_hparams(experiment.hparams, seeds)
    init, run_chunk, evaluate = jitted(trainer)
    ekeys = eval_keys(keys)  # before `init` consumes the keys
    t0 = time.perf_counter()
    state = init(keys, hparams)
    chunk_fn = run_chunk.lower(state).compile()
    compile_seconds = time.perf_counter() - t0

    start, train_seconds = 0, 0.0
    metrics_path = out / "metrics.csv"
    if resume:
        files = checkpoint_files(out)
        if not files:
            raise ValueError(f"--resume: {out}/checkpoints holds no checkpoint")
        state, start, train_seconds = load_run_state(files[-1], state)
        _truncate_metrics(metrics_path, start)

    interrupted = {"flag": False}

    def handler(signum, frame):
        del frame
        interrupted["flag"] = True

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    columns: list[str] | None = None
    try:
        with metrics_path.open("a", newline="") as f:
            writer = csv.writer(f)
            for done in chunk_loop(chunk_fn, state, trainer, start, train_seconds):
                state, row, chunk = done.state, done.row, done.chunk
                train_seconds = done.progress.seconds
                if columns is None:
                    extra = sorted(k for k in row if k not in METRIC_COLUMNS)
                    columns = [*METRIC_COLUMNS, *extra, "wall_seconds"]
                    if metrics_path.stat().st_size == 0:
                        writer.writerow(columns)
                for i in range(seeds):
                    values = {"seed": i, "chunk": chunk, "wall_seconds": round(train_seconds, 3)}
                    values.update({k: row[k][i].item() for k in row})
                    writer.writerow([values[c] for c in columns])
                f.flush()
                halt = interrupted["flag"] or (
                    stop_after is not None and chunk - start >= stop_after
                )
                last = done.all_stopped or chunk == trainer.config.num_chunks
                if chunk % checkpoint_every == 0 or halt or last:
                    _save_and_prune(out, state, chunk, train_seconds, keep)
                if on_chunk is not None:
                    on_chunk(done.progress)
                if halt:
                    return {"interrupted": True, "chunk": chunk, "folder": str(out)}
    finally:
        for s, h in previous.items():
            signal.signal(s, h)

    eval_returns = np.asarray(evaluate(state.agent, ekeys))
    summary = make_summary(
        experiment.algo,
        experiment.env_id,
        np.asarray(state.env_steps),
        eval_returns,
        compile_seconds,
        train_seconds,
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot_folders([out], out / "curve.png")
    report = find_algo(experiment.algo).report
    if report is not None:
        first = jax.tree.map(lambda x: x[0], state.agent)
        summary = {**summary, "report": report(first, experiment.env, experiment.env_params, out)}
    return summary


def _save_and_prune(out: Path, state: RunState, chunk: int, seconds: float, keep: int) -> None:
    save_run_state(out / "checkpoints" / f"chunk_{chunk:06d}.ckpt", state, chunk, seconds)
    for old in checkpoint_files(out)[:-keep]:
        old.unlink()


def _truncate_metrics(path: Path, upto_chunk: int) -> None:
    """Drop metric rows written after the checkpoint being resumed from."""
    if not path.exists():
        return
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    at = header.index("chunk")
    keep = [r for r in body if int(r[at]) <= upto_chunk]
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        csv.writer(f).writerows([header, *keep])
    os.replace(tmp, path)


def read_metrics(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """`metrics.csv` of a run folder as arrays `[S, chunks]` per column."""
    with Path(folder, "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{folder}/metrics.csv holds no rows")
    seeds = sorted({int(r["seed"]) for r in rows})
    chunks = sorted({int(r["chunk"]) for r in rows})
    out = {}
    for name in rows[0]:
        table = np.full((len(seeds), len(chunks)), np.nan)
        for r in rows:
            table[int(r["seed"]), chunks.index(int(r["chunk"]))] = float(r[name])
        out[name] = table
    return out


def plot_folders(folders: list[Path], path: Path) -> None:
    """One figure with the learning curves of several run folders."""
    runs = {}
    for folder in folders:
        m = read_metrics(folder)
        settings = json.loads(Path(folder, "config.json").read_text())
        label = f"{settings['algo']} on {settings['env']} ({Path(folder).name})"
        runs[label] = (m["env_steps"], m["episode_return_mean"])
    plot_learning_curves(runs, path, title="episode return")
