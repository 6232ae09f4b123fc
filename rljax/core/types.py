"""The agent protocol: the few types every algorithm and the driver agree on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
from gymnax.environments import spaces

Array = jax.Array
Key = jax.Array
PyTree = Any
AgentState = Any
Metrics = dict[str, Array]


class Transition(NamedTuple):
    """One environment step, as the driver hands it to `Agent.update`.

    The driver passes a rollout with leaves shaped `[T, B, ...]` (time, environments).
    """

    obs: Array  # [T, B, *obs_shape]
    action: Array  # [T, B], int32
    reward: Array  # [T, B], float32
    discount: Array  # [T, B], gamma-free: 0.0 only where the episode terminated
    next_obs: Array  # [T, B, *obs_shape], the true next observation, also at an auto-reset
    done: Array  # [T, B], bool: terminated | truncated, the episode boundary


class Agent(NamedTuple):
    """An algorithm: three pure functions over an immutable state pytree.

    * `init(key, hparams, obs) -> state`: `obs` is the batch of first observations
      `[B, *obs_shape]` (its shape fixes the agent's per-environment state);
      `hparams` are stored in the state as traced leaves.
    * `act(state, obs, key, greedy=False) -> action`: `obs` is `[B, *obs_shape]`, the
      action `[B]`. `greedy` is a static Python bool (evaluation).
    * `update(state, transition, key) -> (state, metrics)`: `transition` leaves are
      `[T, B, ...]`; `metrics` is a flat dict of scalars.

    Every agent state has a `params` field holding all the greedy policy needs, so that
    trained parameters can be saved and loaded on their own.
    """

    init: Callable[[Key, Any, Array], AgentState]
    act: Callable[..., Array]
    update: Callable[[AgentState, Transition, Key], tuple[AgentState, Metrics]]


class EnvSpec(NamedTuple):
    """What an algorithm needs to know of an environment to build its networks (static)."""

    obs_shape: tuple[int, ...]
    num_actions: int


def env_spec(env: Any, env_params: Any) -> EnvSpec:
    """The static shapes an algorithm needs from a gymnax environment: the observation
    shape and the number of actions.

    Raises `ValueError` for an action space that is not `Discrete`.
    """
    space = env.action_space(env_params)
    if not isinstance(space, spaces.Discrete):
        raise ValueError(
            f"{env.name} has action space {type(space).__name__}; rljax's value-based and "
            "policy-gradient agents need a Discrete action space"
        )
    obs_shape = tuple(env.observation_space(env_params).shape)
    return EnvSpec(obs_shape=obs_shape, num_actions=int(space.n))
