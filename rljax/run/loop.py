"""The one chunk loop: run a `Trainer` from the host, chunk by chunk, for a batch of runs.

One compiled `vmap(run_chunk)` program is called repeatedly with the carried state (no
recompilation per chunk); between chunks the host sees each chunk's metrics, so progress
can be shown, checkpoints written and metrics collected without accumulating on the
device. `run_batch`, run folders (`rljax.run.folders`) and the examples all use
`chunk_loop`.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from rljax.core.driver import RunState, Trainer, host_metrics
from rljax.core.types import Key
from rljax.run.sharding import runs_sharding, shard_runs


class Progress(NamedTuple):
    """What the loop reports after each chunk (host values, over all runs)."""

    chunk: int  # chunks done
    num_chunks: int
    env_steps: int  # per run
    total_env_steps: int  # per run
    seconds: float  # training time so far (compilation excluded)
    recent_return: float  # mean over runs of the last completed-episode mean (NaN: none yet)
    stopped: int  # runs whose stopping criterion was met


class ChunkDone(NamedTuple):
    """One step of `chunk_loop`: the state after `chunk` chunks and that chunk's metrics."""

    chunk: int
    state: RunState  # leaves [S, ...]
    row: dict[str, np.ndarray]  # each [S]
    progress: Progress
    all_stopped: bool


class RunResult(NamedTuple):
    """A finished batch of runs. Leading axis `[S]` is the run (seed, setting)."""

    state: RunState  # device arrays, leaves [S, ...]
    metrics: dict[str, np.ndarray]  # [S, chunks_run]
    eval_returns: np.ndarray  # [S, eval_episodes]
    compile_seconds: float
    train_seconds: float


@functools.cache
def jitted(trainer: Trainer, sharding: Any = None) -> tuple[Callable, Callable, Callable]:
    """`jit(vmap(...))` of the trainer's `init`, `run_chunk` (its input donated) and
    `evaluate`, built once per trainer so that repeated runs and evaluations reuse their
    compilations. With a `sharding` of the runs axis, every input and output is laid out
    by it."""
    kw = {} if sharding is None else {"in_shardings": sharding, "out_shardings": sharding}
    return (
        jax.jit(jax.vmap(trainer.init), **kw),
        jax.jit(jax.vmap(trainer.run_chunk), donate_argnums=0, **kw),
        jax.jit(jax.vmap(trainer.evaluate), **kw),
    )


def chunk_loop(
    chunk_fn: Callable[[RunState], tuple[RunState, Any]],
    state: RunState,
    trainer: Trainer,
    start: int = 0,
    seconds: float = 0.0,
) -> Iterator[ChunkDone]:
    """Run chunks from `start` until the last one, or until every run has met its stopping
    rule; yield a `ChunkDone` after each. The caller may stop early by leaving the loop.

    `chunk_fn` is the compiled `vmap(run_chunk)`; `seconds` is training time already spent
    (a resumed run), counted into `Progress.seconds`.
    """
    config = trainer.config
    last_return = None
    t0 = time.perf_counter() - seconds
    for chunk in range(start + 1, config.num_chunks + 1):
        state, metrics = chunk_fn(state)
        row = host_metrics(metrics)
        finished = ~np.isnan(row["episode_return_mean"])
        if last_return is None:
            last_return = np.full(finished.shape, np.nan)
        last_return = np.where(finished, row["episode_return_mean"], last_return)
        stopped = np.asarray(state.stopped)
        progress = Progress(
            chunk=chunk,
            num_chunks=config.num_chunks,
            env_steps=int(np.max(row["env_steps"])),
            total_env_steps=config.total_env_steps,
            seconds=time.perf_counter() - t0,
            recent_return=_nanmean(last_return),
            stopped=int(stopped.sum()),
        )
        all_stopped = config.stop_return is not None and bool(stopped.all())
        yield ChunkDone(chunk, state, row, progress, all_stopped)
        if all_stopped:
            return


def eval_keys(keys: Key, eval_key: Key | None = None) -> Key:
    """One evaluation key per run `[S]`: split from `eval_key`, by default a fold of the
    first training key (a clone: `keys` stay unused for training)."""
    if eval_key is None:
        eval_key = jax.random.fold_in(jax.random.clone(keys)[0], 1)
    return jax.random.split(eval_key, len(keys))


def run_batch(
    trainer: Trainer,
    keys: Key,
    hparams: Any,
    on_chunk: Callable[[Progress], None] | None = None,
    eval_key: Key | None = None,
    devices: Sequence[Any] | None = None,
) -> RunResult:
    """Train `S` runs at once: `keys` `[S]`, `hparams` with leaves `[S, ...]`.

    Stops early once every run met the trainer's stopping criterion (if it has one).
    Evaluates each run's greedy policy at the end (`eval_key` defaults to a fold of
    the first key). With `devices` (e.g. `jax.devices()`), the runs are split evenly
    across them (`rljax.run.sharding.shard_runs`); the results are the same.
    """
    sharding = None
    if devices is not None:
        keys, hparams = shard_runs(keys, devices), shard_runs(hparams, devices)
        sharding = runs_sharding(len(keys), devices)
    init, run_chunk, evaluate = jitted(trainer, sharding)
    ekeys = eval_keys(keys, eval_key)  # before `init` consumes the keys
    t0 = time.perf_counter()
    state = init(keys, hparams)
    chunk_fn = run_chunk.lower(state).compile()
    compile_seconds = time.perf_counter() - t0

    rows: list[dict[str, np.ndarray]] = []
    done = None
    for done in chunk_loop(chunk_fn, state, trainer):
        rows.append(done.row)
        if on_chunk is not None:
            on_chunk(done.progress)
    state = done.state
    jax.block_until_ready(state)
    train_seconds = done.progress.seconds
    if sharding is not None:
        ekeys = jax.device_put(ekeys, sharding)
    eval_returns = np.asarray(evaluate(state.agent, ekeys))
    metrics = {k: np.stack([r[k] for r in rows], axis=1) for k in rows[0]}
    return RunResult(state, metrics, eval_returns, compile_seconds, train_seconds)


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
            f"[{p.chunk:>4}/{p.num_chunks}] {p.env_steps:>8,} steps/run  "
            f"return {p.recent_return:7.1f}  {rate:>9,.0f} steps/s/run  "
            f"{p.seconds:6.1f}s  eta {eta:5.0f}s"
        )
        if p.stopped:
            line += f"  stopped {p.stopped}"
        stream.write(("\r" + line) if tty else (line + "\n"))
        if tty and last:
            stream.write("\n")
        stream.flush()

    return report
