"""PRNG keys as `lax.scan` inputs, and typed key arrays as raw data (for the host)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax

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
