"""Run a `Trainer` from the host, chunk by chunk, for a batch of seeds and hyperparameters.

One compiled `vmap(run_chunk)` program is called repeatedly with the carried state (no
recompilation per chunk); between chunks the host shows progress and collects metrics, so
that metrics leave the device per chunk instead of accumulating on it.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rljax import checkpoint
from rljax.driver import RunState, Trainer, tile_hparams
from rljax.plotting import plot_learning_curves
from rljax.sharding import runs_sharding, shard_runs
from rljax.types import Key


class Progress(NamedTuple):
    """What the runner reports after each chunk (host values, over all seeds)."""

    chunk: int  # chunks done
    num_chunks: int
    env_steps: int  # per seed
    total_env_steps: int  # per seed
    seconds: float  # since the first chunk started (compile excluded)
    recent_return: float  # mean over seeds of the last completed-episode mean (NaN: none yet)
    stopped: int  # seeds whose stopping criterion was met


class RunResult(NamedTuple):
    """A finished run. Leading axis `[S]` is the seed (or hyperparameter setting)."""

    state: RunState  # device arrays, leaves [S, ...]
    metrics: dict[str, np.ndarray]  # [S, chunks_run]
    eval_returns: np.ndarray  # [S, eval_episodes]
    compile_seconds: float
    train_seconds: float


@functools.cache
def compiled(trainer: Trainer, sharding: Any = None) -> tuple[Callable, Callable, Callable]:
    """`jit(vmap(...))` of the trainer's `init`, `run_chunk` (its input donated) and
    `evaluate`, built once per trainer so that repeated runs and evaluations reuse them.
    With a `sharding` of the runs axis, every input and output is laid out by it."""
    kw = {} if sharding is None else {"in_shardings": sharding, "out_shardings": sharding}
    return (
        jax.jit(jax.vmap(trainer.init), **kw),
        jax.jit(jax.vmap(trainer.run_chunk), donate_argnums=0, **kw),
        jax.jit(jax.vmap(trainer.evaluate), **kw),
    )


def run(
    trainer: Trainer,
    keys: Key,
    hparams: Any,
    on_chunk: Callable[[Progress], None] | None = None,
    eval_key: Key | None = None,
    devices: Sequence[Any] | None = None,
) -> RunResult:
    """Train `S` runs at once: `keys` `[S]`, `hparams` with leaves `[S, ...]`.

    Stops early once every seed met the trainer's stopping criterion (if it has one).
    Evaluates each seed's greedy policy at the end (`eval_key` defaults to a fold of
    the first key). With `devices` (e.g. `jax.devices()`), the runs are split evenly
    across them (`rljax.sharding.shard_runs`); the results are the same.
    """
    sharding = None
    if devices is not None:
        keys, hparams = shard_runs(keys, devices), shard_runs(hparams, devices)
        sharding = runs_sharding(len(keys), devices)
    config = trainer.config
    init, run_chunk, evaluate = compiled(trainer, sharding)
    t0 = time.perf_counter()
    state = init(keys, hparams)
    chunk_fn = run_chunk.lower(state).compile()
    compile_seconds = time.perf_counter() - t0

    rows: list[dict[str, np.ndarray]] = []
    last_return = np.full(len(keys), np.nan)
    t0 = time.perf_counter()
    for chunk in range(config.num_chunks):
        state, metrics = chunk_fn(state)
        row = jax.device_get(metrics)
        rows.append(row)
        finished = ~np.isnan(row["episode_return_mean"])
        last_return = np.where(finished, row["episode_return_mean"], last_return)
        stopped = np.asarray(state.stopped)
        if on_chunk is not None:
            on_chunk(
                Progress(
                    chunk=chunk + 1,
                    num_chunks=config.num_chunks,
                    env_steps=int(np.max(row["env_steps"])),
                    total_env_steps=config.total_env_steps,
                    seconds=time.perf_counter() - t0,
                    recent_return=_nanmean(last_return),
                    stopped=int(stopped.sum()),
                )
            )
        if config.stop_return is not None and stopped.all():
            break
    jax.block_until_ready(state)
    train_seconds = time.perf_counter() - t0
    ekeys = eval_keys(keys, eval_key)
    if sharding is not None:
        ekeys = jax.device_put(ekeys, sharding)
    eval_returns = np.asarray(evaluate(state.agent, ekeys))
    metrics = {k: np.stack([r[k] for r in rows], axis=1) for k in rows[0]}
    return RunResult(state, metrics, eval_returns, compile_seconds, train_seconds)


def eval_keys(keys: Key, eval_key: Key | None = None) -> Key:
    """One evaluation key per run `[S]`: split from `eval_key`, by default a fold of the
    first training key."""
    if eval_key is None:
        eval_key = jax.random.fold_in(keys[0], 1)
    return jax.random.split(eval_key, len(keys))


def _nanmean(x: np.ndarray) -> float:
    return float("nan") if np.isnan(x).all() else float(np.nanmean(x))


def print_progress(stream=None) -> Callable[[Progress], None]:
    """A progress reporter: one rewritten line on a terminal, plain lines (about 20 per
    run) otherwise, e.g. in CI logs."""
    stream = stream or sys.stdout
    tty = stream.isatty()

    def report(p: Progress) -> None:
        every = max(1, p.num_chunks // 20)
        last = p.chunk == p.num_chunks
        if not tty and p.chunk % every and not last:
            return
        rate = p.env_steps / max(p.seconds, 1e-9)
        eta = (p.total_env_steps - p.env_steps) / max(rate, 1e-9)
        line = (
            f"[{p.chunk:>4}/{p.num_chunks}] {p.env_steps:>8,} steps/seed  "
            f"return {p.recent_return:7.1f}  {rate:>9,.0f} steps/s/seed  "
            f"{p.seconds:6.1f}s  eta {eta:5.0f}s"
        )
        if p.stopped:
            line += f"  stopped {p.stopped}"
        stream.write(("\r" + line) if tty else (line + "\n"))
        if tty and last:
            stream.write("\n")
        stream.flush()

    return report


# --- Run folders: config.json, metrics.csv, checkpoints/, curve.png, summary.json --------

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
    """Train `experiment` (`rljax.experiment.Experiment`) for `seeds` seeds into `out`.

    Writes `config.json`, appends one row per chunk per seed to `metrics.csv`, saves the
    complete training state (networks, optimizer, replay memory, environments, keys,
    counters) to `checkpoints/` every `checkpoint_every` chunks and at the end, keeping
    the newest `keep`, then writes `curve.png` and `summary.json` (`SUMMARY_KEYS`).

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
    config = trainer.config
    keys = jax.random.split(jax.random.key(seed), seeds)
    hparams = tile_hparams(experiment.hparams, seeds)
    init, run_chunk, evaluate = compiled(trainer)
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
    last_return = np.full(seeds, np.nan)
    try:
        with metrics_path.open("a", newline="") as f:
            writer = csv.writer(f)
            chunk = start
            t_start = time.perf_counter() - train_seconds
            while chunk < config.num_chunks:
                state, metrics = chunk_fn(state)
                row = {k: np.asarray(v) for k, v in jax.device_get(metrics).items()}
                chunk += 1
                train_seconds = time.perf_counter() - t_start
                extra = sorted(k for k in row if k not in METRIC_COLUMNS)
                if columns is None:
                    columns = [*METRIC_COLUMNS, *extra, "wall_seconds"]
                    if metrics_path.stat().st_size == 0:
                        writer.writerow(columns)
                for i in range(seeds):
                    values = {"seed": i, "chunk": chunk, "wall_seconds": round(train_seconds, 3)}
                    values.update({k: row[k][i].item() for k in row})
                    writer.writerow([values[c] for c in columns])
                f.flush()
                done = ~np.isnan(row["episode_return_mean"])
                last_return = np.where(done, row["episode_return_mean"], last_return)
                stopped = np.asarray(state.stopped)
                all_stopped = config.stop_return is not None and stopped.all()
                halt = interrupted["flag"] or (
                    stop_after is not None and chunk - start >= stop_after
                )
                if (
                    chunk % checkpoint_every == 0
                    or halt
                    or all_stopped
                    or chunk == config.num_chunks
                ):
                    _save_and_prune(out, state, chunk, train_seconds, keep)
                if on_chunk is not None:
                    on_chunk(
                        Progress(
                            chunk=chunk,
                            num_chunks=config.num_chunks,
                            env_steps=int(np.max(row["env_steps"])),
                            total_env_steps=config.total_env_steps,
                            seconds=train_seconds,
                            recent_return=_nanmean(last_return),
                            stopped=int(stopped.sum()),
                        )
                    )
                if halt:
                    return {"interrupted": True, "chunk": chunk, "folder": str(out)}
                if all_stopped:
                    break
    finally:
        for s, h in previous.items():
            signal.signal(s, h)

    eval_returns = np.asarray(evaluate(state.agent, eval_keys(keys)))
    steps = np.asarray(state.env_steps)
    per_seed = eval_returns.mean(axis=1)
    summary = {
        "algo": experiment.algo,
        "env": experiment.env_id,
        "num_seeds": seeds,
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
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot_folders([out], out / "curve.png")
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
