"""rljax: classic reinforcement-learning algorithms as small pure JAX functions."""

from rljax import a2c, a3c, checkpoint, deep_sarsa, dp, dqn, reinforce, replay, tabular
from rljax.driver import (
    RunState,
    TrainConfig,
    Trainer,
    TrainOutput,
    greedy_episode,
    make_train,
    make_trainer,
    tile_hparams,
)
from rljax.envs import env_spec, make, register, registered_envs
from rljax.types import Agent, EnvSpec, Transition

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "EnvSpec",
    "RunState",
    "TrainConfig",
    "TrainOutput",
    "Trainer",
    "Transition",
    "a2c",
    "a3c",
    "checkpoint",
    "deep_sarsa",
    "dp",
    "dqn",
    "env_spec",
    "greedy_episode",
    "make",
    "make_train",
    "make_trainer",
    "register",
    "registered_envs",
    "reinforce",
    "replay",
    "tabular",
    "tile_hparams",
]
