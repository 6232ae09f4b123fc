"""PRNG keys as `lax.scan` inputs."""

from __future__ import annotations

import functools
from collections.abc import Callable

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
