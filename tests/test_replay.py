"""The pure replay memory: ring order, wrap-around, sampling only written slots."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax.replay import replay_add, replay_init, replay_sample


def _item():
    return {"x": jnp.float32(0.0), "v": jnp.zeros((2,), jnp.int32)}


def _batch(values):
    values = jnp.asarray(values, jnp.float32)
    return {"x": values, "v": jnp.stack([values, -values], 1).astype(jnp.int32)}


def test_add_fills_in_order_then_wraps_around():
    buf = replay_init(_item(), capacity=5)
    buf = replay_add(buf, _batch([1, 2, 3]))
    assert int(buf.size) == 3 and int(buf.index) == 3
    np.testing.assert_array_equal(buf.data["x"], [1, 2, 3, 0, 0])
    buf = replay_add(buf, _batch([4, 5, 6, 7]))
    # Slots 3, 4 take 4, 5; then 6, 7 overwrite the oldest items in slots 0, 1.
    np.testing.assert_array_equal(buf.data["x"], [6, 7, 3, 4, 5])
    np.testing.assert_array_equal(buf.data["v"][:, 1], [-6, -7, -3, -4, -5])
    assert int(buf.size) == 5 and int(buf.index) == 2


def test_sampling_draws_only_written_slots():
    buf = replay_init(_item(), capacity=100)
    buf = replay_add(buf, _batch([10, 20, 30]))
    sample = jax.jit(replay_sample, static_argnums=2)(buf, jax.random.key(0), 2_000)
    values = np.asarray(sample["x"])
    assert set(np.unique(values)) == {10.0, 20.0, 30.0}
    # Roughly uniform over the three written slots.
    counts = np.array([(values == v).sum() for v in (10, 20, 30)])
    assert (np.abs(counts - 2_000 / 3) < 150).all(), counts


def test_buffer_works_under_jit_and_vmap():
    def fill(seed):
        buf = replay_init(_item(), capacity=4)
        buf = replay_add(buf, _batch(jnp.arange(3) + seed))
        return replay_sample(buf, jax.random.key(0), 8)["x"]

    out = jax.jit(jax.vmap(fill))(jnp.arange(3.0) * 100)
    for i in range(3):
        assert set(np.unique(out[i])) <= {100.0 * i, 100.0 * i + 1, 100.0 * i + 2}


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        replay_init(_item(), capacity=0)
    buf = replay_init(_item(), capacity=2)
    with pytest.raises(ValueError, match="cannot add 3 items"):
        replay_add(buf, _batch([1, 2, 3]))
