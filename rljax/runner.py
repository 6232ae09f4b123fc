"""Run a `Trainer` from the host, chunk by chunk, for a batch of seeds and hyperparameters.

One compiled `vmap(run_chunk)` program is called repeatedly with the carried state (no
recompilation per chunk); between chunks the host shows progress and collects metrics, so
that metrics leave the device per chunk instead of accumulating on it.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from rljax.driver import RunState, Trainer
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
def compiled(trainer: Trainer) -> tuple[Callable, Callable, Callable]:
    """`jit(vmap(...))` of the trainer's `init`, `run_chunk` (its input donated) and
    `evaluate`, built once per trainer so that repeated runs and evaluations reuse them."""
    return (
        jax.jit(jax.vmap(trainer.init)),
        jax.jit(jax.vmap(trainer.run_chunk), donate_argnums=0),
        jax.jit(jax.vmap(trainer.evaluate)),
    )


def run(
    trainer: Trainer,
    keys: Key,
    hparams: Any,
    on_chunk: Callable[[Progress], None] | None = None,
    eval_key: Key | None = None,
) -> RunResult:
    """Train `S` runs at once: `keys` `[S]`, `hparams` with leaves `[S, ...]`.

    Stops early once every seed met the trainer's stopping criterion (if it has one).
    Evaluates each seed's greedy policy at the end (`eval_key` defaults to a fold of
    the first key).
    """
    config = trainer.config
    init, run_chunk, evaluate = compiled(trainer)
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
    eval_returns = np.asarray(evaluate(state.agent, eval_keys(keys, eval_key)))
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
