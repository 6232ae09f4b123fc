"""Behaviour policies: epsilon-greedy for every value-based agent, softmax sampling for
every policy-gradient agent.

One tie rule. Exploring actions break ties in the maximum at random: `epsilon_greedy_probs`
shares the greedy probability equally among tied actions, as the course's agents do
(`np.random.choice` among the best). Greedy evaluation (`greedy_action`, `act(..., greedy=True)`)
is deterministic and takes the lowest index among ties (`argmax`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rljax.core.types import Array, Key


def epsilon_at(hparams: Any, count: Array) -> Array:
    """`max(epsilon_end, epsilon * epsilon_decay ** count)` for hyperparameters with those
    three fields (DQN counts gradient steps, Deep SARSA gradient steps, the tabular agents
    update calls)."""
    decayed = hparams.epsilon * hparams.epsilon_decay ** count.astype(jnp.float32)
    return jnp.maximum(hparams.epsilon_end, decayed)


def greedy_action(q: Array) -> Array:
    """The greedy action `[...]` of values or logits `[..., A]`, ties to the lowest index."""
    return jnp.argmax(q, axis=-1).astype(jnp.int32)


def epsilon_greedy_probs(q: Array, epsilon: Array) -> Array:
    """Action probabilities `[..., A]` of epsilon-greedy on `q [..., A]`: `epsilon / A` on
    every action, and `1 - epsilon` shared equally among the actions tied for the max."""
    best = (q == jnp.max(q, axis=-1, keepdims=True)).astype(jnp.float32)
    return (1.0 - epsilon) * best / jnp.sum(best, axis=-1, keepdims=True) + epsilon / q.shape[-1]


def sample(key: Key, probs: Array) -> Array:
    """One action `[...]` per row of `probs [..., A]`, by inverse CDF from one uniform draw
    per row."""
    u = jax.random.uniform(key, (*probs.shape[:-1], 1))
    cdf = jnp.cumsum(probs, axis=-1)[..., :-1]
    return jnp.sum(u >= cdf, axis=-1).astype(jnp.int32)


def epsilon_greedy(key: Key, q: Array, epsilon: Array) -> Array:
    """Sample epsilon-greedy actions `[...]` from values `q [..., A]` (ties at random)."""
    return sample(key, epsilon_greedy_probs(q, epsilon))


def epsilon_greedy_policy(key: Key, q: Array, epsilon: Array, greedy: bool = False) -> Array:
    """Actions `[...]` from values `q [..., A]`: epsilon-greedy samples, or, when the static
    `greedy` is set, the greedy action (what every value-based agent's `act` does)."""
    if greedy:
        return greedy_action(q)
    return epsilon_greedy(key, q, epsilon)


def softmax_policy(key: Key, logits: Array, greedy: bool = False) -> Array:
    """Actions `[...]` from logits `[..., A]`: sampled from the softmax, or, when the
    static `greedy` is set, its argmax."""
    if greedy:
        return greedy_action(logits)
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)
