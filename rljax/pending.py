"""Transitions that wait for their next action: what SARSA-style updates need.

SARSA's target for the transition `(s, a, r, s')` uses the next action `a'` actually taken
in `s'`. For the last transition of a rollout that action is only chosen in the next
rollout, so that transition waits in the agent state and is learned from at the start of
the next `update`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rljax.core.types import Array, Transition


class PendingRollout(NamedTuple):
    """The last transition of each of `B` environments, with `[B, ...]` leaves."""

    transition: Transition  # leaves [B, ...]
    valid: Array  # shape=(), bool: False before the first rollout

    @staticmethod
    def empty(obs: Array) -> PendingRollout:
        """Nothing pending, for the batch of first observations `obs [B, *obs_shape]`."""
        B = obs.shape[0]
        zeros = jnp.zeros((B,), jnp.float32)
        placeholder = Transition(
            obs=jnp.zeros_like(obs),
            action=jnp.zeros((B,), jnp.int32),
            reward=zeros,
            discount=zeros,
            next_obs=jnp.zeros_like(obs),
            done=jnp.zeros((B,), bool),
        )
        return PendingRollout(placeholder, jnp.bool_(False))

    def shift(self, rollout: Transition) -> tuple[Transition, Array, Array, PendingRollout]:
        """Line up a rollout `[T, B]` behind the pending transition.

        Returns `(now, next_action, valid, pending)`: the `T` transitions to learn from now
        (the pending one, then all but the rollout's last), leaves `[T, B, ...]`; the next
        action taken after each `[T, B]`; `[T]` bool, False for the placeholder before
        the first rollout; and the new pending transition (the rollout's last).
        """
        seq = jax.tree.map(lambda p, r: jnp.concatenate([p[None], r]), self.transition, rollout)
        now = jax.tree.map(lambda x: x[:-1], seq)
        valid = jnp.ones(rollout.done.shape[0], bool).at[0].set(self.valid)
        pending = PendingRollout(jax.tree.map(lambda x: x[-1], seq), jnp.bool_(True))
        return now, seq.action[1:], valid, pending
