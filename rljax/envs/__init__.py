"""Environments: `make(env_id)` for gymnax ids and rljax's own environments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnax

from rljax.core.types import env_spec
from rljax.envs import gridworld, pacman, pixel_probe, probes

_REGISTRY: dict[str, Callable[[], Any]] = {}


def register(env_id: str, factory: Callable[[], Any]) -> None:
    """Register `factory() -> gymnax Environment` under `env_id` for `make`."""
    if env_id in _REGISTRY:
        raise ValueError(f"environment id {env_id!r} is already registered")
    _REGISTRY[env_id] = factory


def registered_envs() -> list[str]:
    """Every id `make` accepts: rljax's own first, then gymnax's."""
    return sorted(_REGISTRY) + [e for e in gymnax.registered_envs if e not in _REGISTRY]


def make(env_id: str) -> tuple[Any, Any]:
    """Build an environment and its default parameters: `(env, env_params)`.

    rljax's own ids are looked up first; any other gymnax id passes through to
    `gymnax.make`. An unknown id raises `ValueError` listing the known ids.
    """
    if env_id in _REGISTRY:
        env = _REGISTRY[env_id]()
        return env, env.default_params
    if env_id in gymnax.registered_envs:
        return gymnax.make(env_id)
    known = ", ".join(registered_envs())
    raise ValueError(f"unknown environment id {env_id!r}; known ids: {known}")


_ALL = {**probes.PROBES, **pixel_probe.PIXEL_PROBES, **gridworld.GRIDWORLDS, **pacman.PACMAN}
for _id, _factory in _ALL.items():
    register(_id, _factory)

__all__ = ["env_spec", "make", "register", "registered_envs"]
