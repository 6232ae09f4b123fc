"""The protocol and the loop: types, validation, static configs, the driver, evaluation.

Nothing here imports rljax's algorithms, components or host-side tools.
"""

from rljax.core.config import Preset, TrainConfig, pick_preset
from rljax.core.driver import (
    RunState,
    Trainer,
    TrainOutput,
    host_metrics,
    make_train,
    make_trainer,
    tile_hparams,
)
from rljax.core.evaluation import greedy_episode, make_evaluate
from rljax.core.types import Agent, AgentState, Array, EnvSpec, Key, Metrics, Transition, env_spec
from rljax.core.validation import as_leaves, check_values, hyperparameters

__all__ = [
    "Agent",
    "AgentState",
    "Array",
    "EnvSpec",
    "Key",
    "Metrics",
    "Preset",
    "RunState",
    "TrainConfig",
    "TrainOutput",
    "Trainer",
    "Transition",
    "as_leaves",
    "check_values",
    "env_spec",
    "greedy_episode",
    "host_metrics",
    "hyperparameters",
    "make_evaluate",
    "make_train",
    "make_trainer",
    "pick_preset",
    "tile_hparams",
]
