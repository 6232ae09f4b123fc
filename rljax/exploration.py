"""Epsilon-greedy exploration, shared by every value-based agent."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rljax.types import Array, Key


def epsilon_at(hparams: Any, count: Array) -> Array:
    """`max(epsilon_end, epsilon * epsilon_decay ** count)` for hyperparameters with those
    three fields (DQN counts gradient steps, Deep SARSA and the tabular agents updates)."""
    decayed = hparams.epsilon * hparams.epsilon_decay ** count.astype(jnp.float32)
    return jnp.maximum(hparams.epsilon_end, decayed)


def epsilon_greedy(key: Key, q: Array, epsilon: Array) -> Array:
    """Sample actions `[B]` from Q-values `[B, A]`: uniform with probability epsilon,
    otherwise the argmax."""
    k_explore, k_random = jax.random.split(key)
    explore = jax.random.uniform(k_explore, q.shape[:-1]) < epsilon
    random = jax.random.randint(k_random, q.shape[:-1], 0, q.shape[-1])
    return jnp.where(explore, random, jnp.argmax(q, axis=-1)).astype(jnp.int32)
