"""The agent protocol: the few types every algorithm and the driver agree on."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

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

    * `init(key, hparams, obs) -> state`: `obs` is one observation `[*obs_shape]` (shape
      example only); `hparams` are stored in the state as traced leaves.
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


def is_concrete(x: Any) -> bool:
    """True when `x` holds concrete values (not a tracer inside `jit`/`vmap`)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


def check_values(
    owner: str,
    name: str,
    value: Any,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    allow_nan: bool = False,
) -> None:
    """Raise `ValueError` naming `owner.name` and the bad value unless every element lies
    in the interval. Works on scalars and on batched (vmapped) hyperparameter arrays;
    tracers are skipped (validation happens on concrete values, before compilation)."""
    if isinstance(value, str | bytes | type(None)):
        raise ValueError(f"{owner}.{name} must be a number, got {value!r}")
    # JAX rebuilds pytrees with tracers and placeholder objects: only concrete numbers are
    # checked (the user-facing construction, before anything is compiled).
    if not isinstance(value, int | float | np.ndarray | np.generic | jax.Array):
        return
    if not is_concrete(value):
        return
    if isinstance(value, jax.Array) and not _ready(value):
        # An array still being computed is an output that JAX is unflattening into the
        # dataclass inside a call; it came from validated inputs. Reading it here would
        # wait on that call from within it (seen to deadlock) and would stall dispatch.
        return
    arr = np.asarray(value)
    if arr.dtype == bool:
        return
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{owner}.{name} must be a number, got {value!r}")
    flat = arr.reshape(-1).astype(np.float64)
    for v in flat:
        if math.isnan(v):
            if allow_nan:
                continue
            raise ValueError(f"{owner}.{name} must not be NaN, got {v}")
        bad_low = v <= low if low_open else v < low
        bad_high = v >= high if high_open else v > high
        if bad_low or bad_high:
            lo = "(" if low_open else "["
            hi = ")" if high_open else "]"
            raise ValueError(f"{owner}.{name} must lie in {lo}{low}, {high}{hi}, got {v:g}")
        if integer and v != math.floor(v):
            raise ValueError(f"{owner}.{name} must be a whole number, got {v:g}")


def _ready(x: jax.Array) -> bool:
    is_ready = getattr(x, "is_ready", None)
    return bool(x.is_fully_addressable and is_ready is not None and is_ready())
