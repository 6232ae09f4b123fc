"""rljax: classic reinforcement-learning algorithms as small pure JAX functions.

Layers (see docs/architecture.md): `rljax.core` (protocol, validation, driver,
evaluation) < components (`losses`, `nets`, `optim`, `replay`, `exploration`, `pending`)
< `rljax.algos` (one module per algorithm) ; `rljax.envs` ; `rljax.run` (registry, chunk
loop, run folders, checkpoints, sharding, plotting, command line).
"""

from rljax import core, envs, exploration, losses, nets, optim, replay
from rljax.algos import a2c, a3c, deep_sarsa, dp, dqn, reinforce, tabular
from rljax.core import (
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
from rljax.envs import make, register, registered_envs

__version__ = "0.1.0"


def load_policy(folder, seed: int = 0, checkpoint: int | None = None):
    """The greedy policy of run `seed` of a run folder: `policy(obs [B, ...]) -> [B]`
    actions, jittable (`rljax.run.folders.load_policy`; imported when first called)."""
    from rljax.run.folders import load_policy as load

    return load(folder, seed, checkpoint)


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
    "tabular",
    "tile_hparams",
]
