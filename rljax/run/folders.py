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
from rljax.core.keys import data_to_keys, keys_to_data
from rljax.run import checkpoint
from rljax.run.loop import Progress, chunk_loop, eval_keys, init_runs, jitted, pad_runs
from rljax.run.plotting import plot_learning_curves
from rljax.run.registry import algo as find_algo
from rljax.run.registry import make_experiment
from rljax.run.sharding import resolve_devices, runs_sharding

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
    "stop_step_per_seed",
    "versions",
)


def make_summary(
    algo: str,
    env: str,
    env_steps: np.ndarray,
    eval_returns: np.ndarray,
    compile_seconds: float,
    train_seconds: float,
    stop_steps: np.ndarray | None = None,
) -> dict[str, Any]:
    """The one summary schema (`SUMMARY_KEYS`) of a batch of runs: `env_steps [S]` taken by
    each run, greedy `eval_returns [S, episodes]`, the step at which each run met its
    stopping rule `stop_steps [S]` (-1: never)."""
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
        "stop_step_per_seed": (
            [-1] * len(per_seed) if stop_steps is None else np.asarray(stop_steps).tolist()
        ),
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


def checkpoint_files(folder: str | os.PathLike) -> list[Path]:
    """The run folder's checkpoints, oldest first."""
    return sorted(Path(folder, "checkpoints").glob("chunk_*.ckpt"))


def save_run_state(path: Path, state: RunState, chunk: int, train_seconds: float) -> None:
    """Atomically save the complete training state of every seed after `chunk` chunks."""
    tree = {
        "state": keys_to_data(state),
        "chunk": np.int64(chunk),
        "train_seconds": np.float64(train_seconds),
    }
    checkpoint.save(path, tree)


# What older rljax saved where this one does not: DQN's `double_dqn` became a static
# `DQNConfig` field. A run folder written before still loads and resumes: its checkpoints'
# `double_dqn` leaf is dropped, and its saved setting is read where it is now (a rebuilt
# experiment finds it by name either way).
RETIRED_LEAVES = (".hparams.double_dqn",)
MOVED_SETTINGS = {"hparams.double_dqn": "config.double_dqn"}


def load_run_state(path: Path, template: RunState) -> tuple[RunState, int, float]:
    """Load a checkpoint written by `save_run_state`; `template` gives the structure.
    Raises `checkpoint.CheckpointError` for a corrupt file or another configuration."""
    like = {
        "state": keys_to_data(template),
        "chunk": np.int64(0),
        "train_seconds": np.float64(0.0),
    }
    tree = checkpoint.load(path, like, retired=RETIRED_LEAVES)
    state = data_to_keys(template, jax.tree.map(jnp.asarray, tree["state"]))
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
    force: bool = False,
    tensorboard: bool = False,
    runs: tuple[Any, Any, list[dict[str, Any]]] | None = None,
    devices: Any = "auto",
    plot: bool = True,
) -> dict[str, Any]:
    """Train `experiment` (`rljax.run.registry.Experiment`) for `seeds` seeds into `out`.

    `runs = (keys [S], hparams [S, ...], labels)` trains a given batch instead (a sweep's
    static group: `labels[i]` are run `i`'s swept values and seed, saved in `config.json`);
    `devices` lays the batch out across devices (`rljax.run.sharding.resolve_devices`;
    padded with copies that are computed and dropped, never saved: a checkpoint holds the
    runs alone, so a folder resumes, evaluates and loads on any number of devices).

    Writes `config.json`, appends one row per chunk per seed to `metrics.csv`, saves the
    complete training state (networks, optimizer, replay memory, environments, keys,
    counters) to `checkpoints/` every `checkpoint_every` chunks and at the end, keeping
    the newest `keep`, then writes `curve.png` and `summary.json` (`SUMMARY_KEYS`). An
    algorithm with a `report` (a value table, ...) writes its files too; the returned
    summary then carries its text under `"report"`. With `tensorboard`, every metric of
    every seed also goes to TensorBoard event files in `out/tensorboard` (tensorboardX,
    the optional extra `rljax[tensorboard]`), keyed by environment steps.

    A folder that holds an earlier run is never mixed into (`prepare_folder`): it is an
    error unless `resume` (continue it; a larger `total_env_steps` extends a finished run)
    or `force` (move it aside to `OUT.old-TIMESTAMP`, then start afresh). With `resume`,
    training continues from the newest checkpoint; on CPU the result is bitwise identical
    to an uninterrupted run. SIGINT/SIGTERM, or `stop_after` chunks, end the run at the
    next chunk boundary after saving a checkpoint; the returned dict then has
    `"interrupted": True` and no summary is written.
    """
    for name, value in (("seeds", seeds), ("checkpoint_every", checkpoint_every), ("keep", keep)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    out = Path(out)
    settings = {**experiment.settings(), "num_seeds": seeds, "seed": seed}
    if runs is not None:
        keys, hparams, labels = runs
        settings["runs"] = labels
    else:
        keys = jax.random.split(jax.random.key(seed), seeds)
        hparams = tile_hparams(experiment.hparams, seeds)
    board = _tensorboard_writer(out) if tensorboard else None
    resume = prepare_folder(out, settings, resume=resume, force=force)

    trainer = experiment.trainer
    ekeys = eval_keys(keys)  # before `init` consumes the keys
    sharding = None
    devices = resolve_devices(devices, seeds)
    if devices is not None:
        keys, hparams, ekeys = (pad_runs(x, len(devices)) for x in (keys, hparams, ekeys))
        sharding = runs_sharding(len(keys), devices)
        keys, hparams, ekeys = jax.device_put((keys, hparams, ekeys), sharding)
    evaluate = jitted(trainer, sharding)[2]
    t0 = time.perf_counter()
    state = jax.block_until_ready(init_runs(trainer, keys, hparams, sharding))
    compile_seconds = time.perf_counter() - t0
    runs_only = lambda tree: jax.tree.map(lambda x: x[:seeds], tree)  # noqa: E731

    start, train_seconds = 0, 0.0
    metrics_path = out / "metrics.csv"
    if resume:
        saved, start, train_seconds = load_run_state(checkpoint_files(out)[-1], runs_only(state))
        state = pad_runs(saved, len(devices)) if devices is not None else saved
        state = jax.device_put(state, sharding) if sharding is not None else state
        _truncate_metrics(metrics_path, start)
    else:
        metrics_path.unlink(missing_ok=True)

    interrupted = {"flag": False}

    def handler(signum, frame):
        del frame
        interrupted["flag"] = True

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    columns: list[str] | None = None
    done = None
    try:
        with metrics_path.open("a", newline="") as f:
            writer = csv.writer(f)
            loop = chunk_loop(trainer, state, start, train_seconds, devices=devices)
            for done in loop:
                row, chunk = done.row, done.chunk
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
                if board is not None:
                    for i in range(seeds):
                        step = int(row["env_steps"][i])
                        for name, value in row.items():
                            if step >= 0 and np.isfinite(value[i]):
                                board.add_scalar(f"seed_{i}/{name}", float(value[i]), step)
                    board.flush()
                halt = interrupted["flag"] or (
                    stop_after is not None and chunk - start >= stop_after
                )
                last = done.all_stopped or chunk == trainer.config.num_chunks
                if chunk % checkpoint_every == 0 or halt or last:
                    state = done.state  # every run's state, put together only to be saved
                    _save_and_prune(out, runs_only(state), chunk, train_seconds, keep)
                if on_chunk is not None:
                    on_chunk(done.progress)
                if halt:
                    return {"interrupted": True, "chunk": chunk, "folder": str(out)}
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if board is not None:
            board.close()

    compile_seconds += 0.0 if done is None else done.compile_seconds
    eval_returns = np.asarray(evaluate(state.agent, ekeys))[:seeds]
    summary = make_summary(
        experiment.algo,
        experiment.env_id,
        np.asarray(state.env_steps)[:seeds],
        eval_returns,
        compile_seconds,
        train_seconds,
        np.asarray(state.stop_step)[:seeds],
    )
    _write_json(out / "summary.json", summary)
    if plot:
        plot_folders([out], out / "curve.png")
    report = find_algo(experiment.algo).report
    if report is not None:
        first = jax.tree.map(lambda x: x[0], state.agent)
        summary = {**summary, "report": report(first, experiment.env, experiment.env_params, out)}
    return summary


def _tensorboard_writer(out: Path) -> Any:
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ValueError(
            "--tensorboard needs tensorboardX: pip install 'rljax[tensorboard]'"
        ) from None
    return _LazyWriter(SummaryWriter, out / "tensorboard")


class _LazyWriter:
    """Opens the event file at the first scalar, after the folder has been prepared."""

    def __init__(self, factory: Callable[..., Any], logdir: Path) -> None:
        self.factory, self.logdir, self.writer = factory, logdir, None

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is None:
            self.writer = self.factory(logdir=str(self.logdir))
        self.writer.add_scalar(tag, value, step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


RUN_FILES = (
    "config.json",
    "metrics.csv",
    "checkpoints",
    "summary.json",
    "curve.png",
    "values.png",
    "tensorboard",
)


def prepare_folder(
    out: Path, settings: dict[str, Any], resume: bool = False, force: bool = False
) -> bool:
    """Make `out` ready for a run with `settings`; returns whether to resume.

    * An empty or missing folder, or one left by a run interrupted before its first
      checkpoint (no checkpoint): a fresh start (`resume` then starts afresh too).
    * A folder holding an earlier run: with `resume`, its `config.json` must match
      `settings` except for a larger `total_env_steps` (extending a run); otherwise, with
      `force`, it is moved aside (never deleted) and a fresh run starts; otherwise a
      `ValueError` names `--resume` and `--force`.
    """
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    held = [name for name in RUN_FILES if (out / name).exists()]
    resumable = bool(checkpoint_files(out)) and (out / "config.json").exists()
    finished = (out / "summary.json").exists()
    if resume and resumable:
        saved = json.loads((out / "config.json").read_text())
        _check_same_settings(out, saved, settings)
        _write_json(out / "config.json", {**settings, "versions": versions()})
        return True
    if held and (resumable or finished) and not force:
        raise ValueError(
            f"{out} holds an earlier run ({', '.join(held)}); add --resume to continue it, "
            "--force to move it aside and start afresh, or choose another --out"
        )
    if held and force:
        aside = out.with_name(f"{out.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        out.rename(aside)
    elif held:  # interrupted before its first checkpoint: nothing worth keeping
        for name in held:
            path = out / name
            if path.is_dir():
                for child in path.iterdir():
                    child.unlink()
                path.rmdir()
            else:
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "config.json", {**settings, "versions": versions()})
    return False


def _write_json(path: Path, value: Any) -> None:
    """Write JSON atomically (temporary file, then rename): a full disk leaves the old file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(value, indent=2))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in settings.items():
        if key == "versions":
            continue
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _check_same_settings(out: Path, saved: dict[str, Any], settings: dict[str, Any]) -> None:
    """Raise `ValueError` naming every setting of `settings` that differs from the saved run,
    with both values; a larger `train.total_env_steps` is allowed (it extends the run)."""
    now = _flat(json.loads(json.dumps(settings)))
    before = {MOVED_SETTINGS.get(k, k): v for k, v in _flat(saved).items()}
    extend = "train.total_env_steps"
    differ = [k for k in sorted(set(now) | set(before)) if now.get(k) != before.get(k)]
    if extend in differ and (now.get(extend) or 0) > (before.get(extend) or 0):
        differ.remove(extend)
    if differ:
        text = "; ".join(
            f"{k}: {before.get(k)!r} in the folder, {now.get(k)!r} now" for k in differ
        )
        raise ValueError(f"--resume: {out} was trained with other settings: {text}")


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
    # A row cut short by a full disk or a crash goes with the rows after the checkpoint.
    complete = [r for r in body if len(r) == len(header) and r[at].isdigit()]
    keep = [r for r in complete if int(r[at]) <= upto_chunk]
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


def settings_as_overrides(saved: dict[str, Any]) -> dict[str, str]:
    """Every saved setting of a run folder as `--set` strings (to rebuild the experiment)."""
    out = {}
    for part in ("hparams", "config", "train"):
        for name, value in (saved.get(part) or {}).items():
            if isinstance(value, list | tuple):
                out[name] = ",".join(str(v) for v in value)
            else:
                out[name] = "none" if value is None else str(value)
    return out


def read_settings(folder: str | os.PathLike) -> dict[str, Any]:
    """A run folder's `config.json`; `ValueError` if `folder` is not a run folder."""
    path = Path(folder, "config.json")
    if not path.exists():
        raise ValueError(f"{folder} is not a run folder (no config.json)")
    return json.loads(path.read_text())


def load_run(
    folder: str | os.PathLike, checkpoint: int | None = None, **changes: str
) -> tuple[Any, RunState, int, Path]:
    """Rebuild a run folder's experiment and load its training state.

    `checkpoint` is the chunk number of a kept checkpoint (`None`: the newest); `changes`
    are `--set`-style strings applied to the saved settings (e.g. `eval_episodes="64"`).
    Returns `(experiment, state with leaves [S, ...], chunk, checkpoint path)`.
    """
    saved = read_settings(folder)
    experiment = find_experiment(saved, changes)
    files = checkpoint_files(folder)
    if not files:
        raise ValueError(f"{folder}/checkpoints holds no checkpoint")
    if checkpoint is None:
        path = files[-1]
    else:
        by_chunk = {int(f.stem.split("_")[1]): f for f in files}
        if checkpoint not in by_chunk:
            raise ValueError(
                f"--checkpoint {checkpoint}: {folder} keeps checkpoints after chunks "
                f"{sorted(by_chunk)}"
            )
        path = by_chunk[checkpoint]
    seeds = saved["num_seeds"]
    keys = jax.random.split(jax.random.key(saved["seed"]), seeds)
    init = jitted(experiment.trainer)[0]
    template = init(keys, tile_hparams(experiment.hparams, seeds))
    state, chunk, _ = load_run_state(path, template)
    return experiment, state, chunk, path


def find_experiment(saved: dict[str, Any], changes: dict[str, str] | None = None) -> Any:
    """The experiment a run folder's saved settings describe (with `changes` applied)."""
    overrides = {**settings_as_overrides(saved), **(changes or {})}
    return make_experiment(saved["algo"], saved["env"], saved["preset"], overrides)


class Policy:
    """The greedy policy of one run of a run folder: `policy(obs [B, *obs_shape]) ->
    actions [B]`, pure and jittable (`jax.jit(policy)` works). `agent`, `state` (that
    run's agent state), `env`, `env_params` and `settings` are there for anything else."""

    def __init__(self, agent: Any, state: Any, env: Any, env_params: Any, settings: dict):
        self.agent, self.state = agent, state
        self.env, self.env_params, self.settings = env, env_params, settings

    def __call__(self, obs: Any) -> Any:
        return self.agent.act(self.state, obs, jax.random.key(0), greedy=True)


def load_policy(folder: str | os.PathLike, seed: int = 0, checkpoint: int | None = None) -> Policy:
    """The greedy policy of run `seed` (0 to `num_seeds - 1`) of a run folder, from its
    newest checkpoint or the one saved after chunk `checkpoint`."""
    experiment, state, _, _ = load_run(folder, checkpoint)
    seeds = int(np.asarray(state.env_steps).shape[0])
    if not 0 <= seed < seeds:
        raise ValueError(f"--seed {seed}: {folder} holds seeds 0 to {seeds - 1}")
    agent_state = jax.tree.map(lambda x: x[seed], state.agent)
    return Policy(
        experiment.agent, agent_state, experiment.env, experiment.env_params, read_settings(folder)
    )
