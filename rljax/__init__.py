"""rljax: classic reinforcement-learning algorithms as small pure JAX functions.

Layers (see docs/architecture.md): `rljax.core` (protocol, validation, driver,
evaluation) < components (`losses`, `nets`, `optim`, `replay`, `exploration`, `pending`)
< `rljax.algos` (one module per algorithm) ; `rljax.envs` ; `rljax.run` (registry, chunk
loop, run folders, checkpoints, sharding, plotting, command line).
"""

import os as _os

import jax as _jax


def use_cpu_cores(count: int | None = None) -> int | None:
    """Give JAX's CPU backend `count` devices (default: the cores this process may use), so
    that a batch of runs split across them (`rljax.run.sharding.default_devices`) keeps
    every core busy. XLA runs one device's program on about one core, so on a 2-core
    machine two devices train a batch of DQN runs in about half the time (measured by
    `benchmarks/sweep.py`, `cpu_devices`).

    `import rljax` calls it with the count in `RLJAX_CPU_DEVICES` if set. It has effect only
    before JAX's backend starts (before any JAX computation), and leaves alone a count the
    user chose (`--xla_force_host_platform_device_count` in `XLA_FLAGS`, or
    `jax_num_cpu_devices`). Returns the count it set, or None if it set nothing.
    """
    if count is None:
        count = len(_os.sched_getaffinity(0)) if hasattr(_os, "sched_getaffinity") else 0
        count = count or _os.cpu_count() or 1
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"use_cpu_cores needs a count >= 1, got {count!r}")
    chosen = "xla_force_host_platform_device_count" in _os.environ.get("XLA_FLAGS", "")
    if chosen or _jax.config.jax_num_cpu_devices != -1 or count == 1:
        return None
    try:
        _jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # the backend already started: keep its devices
        return None
    return count


def _cores_from_environment() -> int | None:
    text = _os.environ.get("RLJAX_CPU_DEVICES", "").strip()
    if not text:
        return use_cpu_cores()
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"RLJAX_CPU_DEVICES must be a count >= 1, got {text!r}")
    return use_cpu_cores(int(text))


_cores_from_environment()  # before anything below starts JAX's backend (gymnax does)

from rljax import core, envs, exploration, losses, nets, optim, replay  # noqa: E402
from rljax.algos import a2c, a3c, deep_sarsa, dp, dqn, reinforce, tabular  # noqa: E402
from rljax.core import (  # noqa: E402
    Agent,
    EnvSpec,
    Preset,
    RunState,
    TrainConfig,
    Trainer,
    TrainOutput,
    Transition,
    env_spec,
    greedy_episode,
    host_metrics,
    make_train,
    make_trainer,
    tile_hparams,
)
from rljax.core.keys import use_unrolled_threefry  # noqa: E402
from rljax.envs import make, register, registered_envs  # noqa: E402

use_unrolled_threefry()  # the same bits, fused into the step on a CPU (RLJAX_ROLLED_THREEFRY: off)

__version__ = "0.1.0"


def load_policy(folder, seed: int = 0, checkpoint: int | None = None):
    """The greedy policy of run `seed` of a run folder: `policy(obs [B, ...]) -> [B]`
    actions, jittable (`rljax.run.folders.load_policy`; imported when first called)."""
    from rljax.run.folders import load_policy as load

    return load(folder, seed, checkpoint)


def sweep(algo: str, env_id: str | None = None, **kwargs):
    """Train every (setting, seed) of a grid, list or random sample of settings as batches
    of runs, one compilation per static configuration (`rljax.run.sweep.sweep`; imported
    when first called). Returns a `SweepResult` (`table`: one row per run, `summary`)."""
    from rljax.run.sweep import sweep as run_sweep

    return run_sweep(algo, env_id, **kwargs)


__all__ = [
    "Agent",
    "EnvSpec",
    "Preset",
    "RunState",
    "TrainConfig",
    "TrainOutput",
    "Trainer",
    "Transition",
    "a2c",
    "a3c",
    "core",
    "deep_sarsa",
    "dp",
    "dqn",
    "env_spec",
    "envs",
    "exploration",
    "greedy_episode",
    "host_metrics",
    "load_policy",
    "losses",
    "make",
    "make_train",
    "make_trainer",
    "nets",
    "optim",
    "register",
    "registered_envs",
    "reinforce",
    "replay",
    "sweep",
    "tabular",
    "tile_hparams",
    "use_cpu_cores",
    "use_unrolled_threefry",
]
