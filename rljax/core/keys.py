"""PRNG keys as `lax.scan` inputs, typed key arrays as raw data (for the host), and JAX's
threefry hash lowered unrolled on the CPU."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from rljax.core.types import Array, Key


def split_to_scan(key: Key, n: int) -> tuple[Array, Callable[[Array], Key]]:
    """`jax.random.split(key, n)` as raw key data `[n, ...]` to scan over, and the function
    that makes each row a key again inside the scan body (same values as the split).

    JAX 0.10's key-reuse checker reports a reuse that is not there when a `vmap`ped
    `lax.scan` takes typed keys as its inputs; scanning over raw data keeps
    `jax_debug_key_reuse` usable on every algorithm.
    """
    impl = jax.random.key_impl(key)
    data = jax.random.key_data(jax.random.split(key, n))
    return data, functools.partial(jax.random.wrap_key_data, impl=impl)


# The driver's streams of randomness (`rljax.core.driver`): a run's key is fixed after its
# `init`, and a draw from stream `s` at env step `n` uses `draw_key(key, s, n)`.
STREAM_ACT, STREAM_ENV, STREAM_UPDATE, STREAM_EVAL = range(4)


def draw_key(key: Key, stream: int, step: Array) -> Key:
    """The key of one draw: `fold_in(fold_in(key, stream), step)`, for a fixed `key`, a
    `stream` number and the int32 `step` (the env steps taken so far) at which it is drawn.

    Counting instead of splitting: a chain `key, k = split(key)` hashes a new key per draw
    in every stream, needed or not, while each `fold_in` here is one hash that XLA drops
    when nothing draws from it and hoists out of the loop when it does not change
    (`fold_in(key, stream)`). Tabular Q-learning on a GridWorld draws one action per step
    and nothing else: its chunk (16,384 runs on 2 CPU devices, the runner's options) ran
    2.27x faster than with the split chain, both compiled in one process and timed in turn.
    Distinct `(stream, step)` pairs give independent keys as distinct splits do.
    """
    return jax.random.fold_in(jax.random.fold_in(key, stream), step)


def is_key(x: Any) -> bool:
    """Whether `x` is a typed PRNG key array."""
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def keys_to_data(tree: Any) -> Any:
    """`tree` with every key array replaced by its raw data (`uint32 [..., 2]` for
    threefry), which NumPy, pickling and checkpoints can hold."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if is_key(x) else x, tree)


def data_to_keys(template: Any, tree: Any) -> Any:
    """The inverse of `keys_to_data`: the leaves of `tree` whose `template` leaf is a key
    array become key arrays of that leaf's implementation again."""
    return jax.tree.map(
        lambda t, x: jax.random.wrap_key_data(x, impl=jax.random.key_impl(t)) if is_key(t) else x,
        template,
        tree,
    )


# Threefry on the CPU. JAX lowers its key hash (`threefry2x32_p`, behind every `split`,
# `fold_in` and draw of its default keys) on the CPU as a `fori_loop` of 5 steps, to keep
# compile times down; in a training step that loop is a while loop of its own per draw,
# which XLA cannot fuse with the arithmetic around it. Unrolled, the 20 rounds are plain
# elementwise operations that fuse. The hash and its bits are the same.
ROLLED_THREEFRY_ENV = "RLJAX_ROLLED_THREEFRY"
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def threefry2x32(key1: Array, key2: Array, x1: Array, x2: Array) -> tuple[Array, Array]:
    """Threefry-2x32 with 20 rounds (Salmon et al., 2011, "Parallel random numbers: as easy
    as 1, 2, 3"), unrolled: the counter `(x1, x2)` hashed under the key `(key1, key2)`, all
    `uint32` arrays of one shape (or broadcastable to it). Each of the 5 blocks is 4 rounds
    `x1 += x2; x2 = rotl(x2, r) ^ x1` and then adds one of the keys `(key1, key2, key1 ^
    key2 ^ 0x1BD11BDA)`, in turn, with the block's number."""
    ks = (key1, key2, key1 ^ key2 ^ _PARITY)
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x1 = x1 + x2
            x2 = jax.lax.shift_left(x2, np.uint32(r)) | jax.lax.shift_right_logical(
                x2, np.uint32(32 - r)
            )
            x2 = x1 ^ x2
        x1 = x1 + ks[(block + 1) % 3]
        x2 = x2 + ks[(block + 2) % 3] + np.uint32(block + 1)
    return x1, x2


def use_unrolled_threefry() -> bool:
    """Lower JAX's threefry hash on the CPU with `threefry2x32` (unrolled) instead of JAX's
    rolled loop, for every program lowered from now on in this process. The bits are the
    same (tested against the published test vectors, a NumPy reference and JAX's own
    lowering); the hash fuses with the step around it: tabular Q-learning's chunk (8,192
    runs) ran 1.12-1.28x faster, DQN's 1.02-1.05x, both lowerings compiled in one process
    and timed in turn. The programs are about a fifth larger, which a warm start from the
    stored programs pays for (0.1-0.3 s). `import rljax` calls it unless
    `RLJAX_ROLLED_THREEFRY` is set. Returns whether it is in use."""
    global _unrolled
    if os.environ.get(ROLLED_THREEFRY_ENV):
        return False
    if not _unrolled:
        from jax.extend.random import threefry2x32_p
        from jax.interpreters import mlir

        rule = mlir.lower_fun(lambda *args: threefry2x32(*args), multiple_results=True)
        mlir.register_lowering(threefry2x32_p, rule, platform="cpu")
        _unrolled = True
    return True


def threefry_lowering() -> str:
    """How this process lowers JAX's threefry hash on the CPU: "unrolled" or "jax"."""
    return "unrolled" if _unrolled else "jax"


_unrolled = False
