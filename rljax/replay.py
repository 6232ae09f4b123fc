"""A replay memory as a pure pytree: a ring buffer that lives inside `jit` and `vmap`."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rljax.core.types import Array, Key, PyTree


class ReplayBuffer(NamedTuple):
    """Fixed-capacity ring buffer.

    `data` has the structure of one stored item with a leading `[capacity]` axis on every
    leaf. `index` is the next slot to write, `size` the number of slots written so far
    (at most `capacity`).
    """

    data: PyTree  # leaves [capacity, ...]
    index: Array  # shape=(), int32
    size: Array  # shape=(), int32

    @property
    def capacity(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[0]


def replay_init(item: PyTree, capacity: int) -> ReplayBuffer:
    """An empty buffer for items shaped like `item` (one item, no batch axis)."""
    if capacity < 1:
        raise ValueError(f"replay capacity must be >= 1, got {capacity}")
    data = jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), item)
    return ReplayBuffer(data=data, index=jnp.int32(0), size=jnp.int32(0))


def replay_add(buffer: ReplayBuffer, items: PyTree) -> ReplayBuffer:
    """Write a batch of items (leaves `[N, ...]`, `N <= capacity`) at the ring position.

    Slot `index + i (mod capacity)` receives item `i`; the oldest items are overwritten.
    """
    n = jax.tree.leaves(items)[0].shape[0]
    capacity = buffer.capacity
    if n > capacity:
        raise ValueError(f"cannot add {n} items at once to a replay buffer of capacity {capacity}")
    slots = (buffer.index + jnp.arange(n, dtype=jnp.int32)) % capacity
    data = jax.tree.map(lambda d, x: d.at[slots].set(x.astype(d.dtype)), buffer.data, items)
    return ReplayBuffer(
        data=data,
        index=(buffer.index + n) % capacity,
        size=jnp.minimum(buffer.size + n, capacity),
    )


def replay_sample(buffer: ReplayBuffer, key: Key, batch_size: int) -> PyTree:
    """Draw `batch_size` items uniformly, with replacement, from the written slots only.

    Returns leaves `[batch_size, ...]`. On an empty buffer it returns slot 0 (zeros); callers
    mask their update until the buffer holds enough items.
    """
    slots = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda d: d[slots], buffer.data)
