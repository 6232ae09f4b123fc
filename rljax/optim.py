"""The optimizer every neural agent uses: gradient clipping by global norm, then Adam, with
the learning rate held in the optimizer state (`optax.inject_hyperparams`) so that it is a
traced, vmappable hyperparameter and a schedule can set it at every step."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import optax

from rljax.core.types import Array


def adam(max_grad_norm: float | Array = jnp.inf) -> optax.GradientTransformation:
    """`clip_by_global_norm(max_grad_norm)` then Adam at the state's learning rate."""
    return optax.chain(
        optax.clip_by_global_norm(max_grad_norm),
        optax.inject_hyperparams(optax.adam)(learning_rate=0.0),
    )


def init(params: Any, learning_rate: float | Array) -> Any:
    """The optimizer state of `adam` for `params`, at `learning_rate`."""
    return set_learning_rate(adam().init(params), learning_rate)


def set_learning_rate(opt_state: Any, learning_rate: float | Array) -> Any:
    """`opt_state` with its learning rate replaced (a schedule's value at this step)."""
    clip_state, adam_state = opt_state
    hyperparams = {**adam_state.hyperparams, "learning_rate": jnp.asarray(learning_rate)}
    return clip_state, adam_state._replace(hyperparams=hyperparams)


def learning_rate(opt_state: Any) -> Array:
    """The learning rate held in `opt_state`."""
    return opt_state[1].hyperparams["learning_rate"]


def step(
    params: Any, opt_state: Any, grads: Any, max_grad_norm: float | Array = jnp.inf
) -> tuple[Any, Any]:
    """One optimizer step: clip `grads` to `max_grad_norm`, Adam. Returns `(params,
    opt_state)`."""
    deltas, opt_state = adam(max_grad_norm).update(grads, opt_state, params)
    return optax.apply_updates(params, deltas), opt_state
