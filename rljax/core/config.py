"""Static settings of a run (`TrainConfig`) and named settings of an algorithm (`Preset`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

from rljax.core.validation import check_counts


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Static settings of a run: they fix shapes and loop lengths (not vmappable).

    Attributes:
      total_env_steps: environment steps per run (all `num_envs` environments together).
      num_envs: environments stepped in parallel (vmapped) per run, `B`.
      rollout_len: steps per environment between two agent updates, `T`.
      chunk_env_steps: environment steps per chunk; each chunk gives one row of metrics and
        is the unit a host-side runner executes at a time.
      eval_episodes: greedy episodes run at the end of `train` (in parallel).
      stop_return: if set, a run stops training once the return that `stop_on` names
        exceeds this value; training halts at the end of that chunk and `stop_step` records
        the step at which the criterion was met.
      stop_window: episodes in the `train` stopping criterion's moving mean.
      stop_on: `train`: the mean return of the last `stop_window` completed training
        episodes, checked after every update; `greedy`: the mean return of
        `eval_episodes` greedy episodes run at the end of every chunk (also reported as the
        `greedy_return` metric), for agents whose greedy policy lags their exploring one.
      max_eval_steps: safety bound on the length of an evaluation episode; defaults to the
        environment's `max_steps_in_episode`.
    """

    total_env_steps: int = 100_000
    num_envs: int = 1
    rollout_len: int = 1
    chunk_env_steps: int = 1_000
    eval_episodes: int = 32
    stop_return: float | None = None
    stop_window: int = 10
    stop_on: str = "train"
    max_eval_steps: int | None = None

    def __post_init__(self) -> None:
        check_counts(
            "TrainConfig",
            self,
            "total_env_steps",
            "num_envs",
            "rollout_len",
            "chunk_env_steps",
            "eval_episodes",
            "stop_window",
        )
        if self.chunk_env_steps % self.steps_per_update:
            raise ValueError(
                f"TrainConfig.chunk_env_steps={self.chunk_env_steps} must be a multiple of "
                f"num_envs * rollout_len = {self.steps_per_update}"
            )
        if self.total_env_steps % self.chunk_env_steps:
            raise ValueError(
                f"TrainConfig.total_env_steps={self.total_env_steps} must be a multiple of "
                f"chunk_env_steps={self.chunk_env_steps}"
            )
        if self.stop_return is not None and not math.isfinite(self.stop_return):
            raise ValueError(f"TrainConfig.stop_return must be finite, got {self.stop_return!r}")
        if self.stop_on not in ("train", "greedy"):
            raise ValueError(
                f"TrainConfig.stop_on must be 'train' or 'greedy', got {self.stop_on!r}"
            )
        if self.max_eval_steps is not None and self.max_eval_steps < 1:
            raise ValueError(f"TrainConfig.max_eval_steps must be >= 1, got {self.max_eval_steps}")

    @property
    def steps_per_update(self) -> int:
        """Environment steps per agent update, `B * T`."""
        return self.num_envs * self.rollout_len

    @property
    def updates_per_chunk(self) -> int:
        return self.chunk_env_steps // self.steps_per_update

    @property
    def num_chunks(self) -> int:
        return self.total_env_steps // self.chunk_env_steps


class Preset(NamedTuple):
    """A complete, named setting of an algorithm: static config, traced hyperparameters,
    driver settings, and the environments it was made for (empty: any environment)."""

    config: Any
    hparams: Any
    train_config: TrainConfig
    envs: tuple[str, ...] = ()


def pick_preset(presets: dict[str, Preset], name: str, label: str) -> Preset:
    """`presets[name]`, or a `ValueError` naming `label` and listing the known presets."""
    if name not in presets:
        raise ValueError(f"unknown {label} preset {name!r}; known presets: {sorted(presets)}")
    return presets[name]
