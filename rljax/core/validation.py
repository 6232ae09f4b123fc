"""Checking what a person gives, once, when they give it.

Hyperparameters are pytrees whose leaves JAX traces, so that a batch of them is one
`vmap`. JAX rebuilds pytrees from their leaves on every flatten and unflatten, inside its
own dispatch and with tracers or placeholder objects as leaves. Validation therefore runs
when a person builds a value (the constructor, `replace`, a preset, `--set`), never when
JAX rebuilds one: `hyperparameters` registers classes whose unflatten bypasses
`__init__` and its `validate`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

T = TypeVar("T")


def is_concrete(x: Any) -> bool:
    """True when `x` holds concrete values (not a tracer inside `jit`/`vmap`)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


def hyperparameters(cls: type[T]) -> type[T]:
    """Class decorator: a frozen dataclass whose every field is a (traced) pytree leaf.

    The class's `validate(self)`, if it defines one, runs when the value is built by its
    constructor or by `replace(**changes)`, and never when JAX rebuilds it from leaves.
    Validation skips traced leaves (a value built inside `jit` is checked by no one: build
    it outside). Subclasses are decorated again to register their own fields.
    """
    if "__post_init__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: put checks in validate(), not __post_init__")

    def post_init(self) -> None:
        validate = getattr(self, "validate", None)
        if validate is not None:
            validate()

    cls.__post_init__ = post_init
    cls = dataclasses.dataclass(frozen=True)(cls)
    names = tuple(f.name for f in dataclasses.fields(cls))

    def flatten_with_keys(x):
        return [(jax.tree_util.GetAttrKey(n), getattr(x, n)) for n in names], None

    def flatten(x):
        return [getattr(x, n) for n in names], None

    def unflatten(_, leaves):
        obj = object.__new__(cls)
        for n, v in zip(names, leaves, strict=True):
            object.__setattr__(obj, n, v)
        return obj

    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)

    def replace(self, **changes: Any):
        """A copy with `changes`, validated like a newly built value."""
        return dataclasses.replace(self, **changes)

    cls.replace = replace
    return cls


def as_leaves(hparams: T) -> T:
    """`hparams` with every leaf a JAX array: numbers float32, booleans bool."""

    def leaf(x):
        x = jnp.asarray(x)
        return x if x.dtype == jnp.bool_ else x.astype(jnp.float32)

    return jax.tree.map(leaf, hparams)


def check_values(
    owner: str,
    name: str,
    value: Any,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    allow_nan: bool = False,
) -> None:
    """Raise `ValueError` naming `owner.name` and the bad value unless every element lies
    in the interval. Works on scalars and on batched (vmapped) hyperparameter arrays;
    traced values are skipped (they are checked where they were built)."""
    if isinstance(value, str | bytes | type(None) | bool):
        raise ValueError(f"{owner}.{name} must be a number, got {value!r}")
    if not is_concrete(value):
        return
    arr = np.asarray(value)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{owner}.{name} must be a number, got {value!r}")
    for v in arr.reshape(-1).astype(np.float64):
        if math.isnan(v):
            if allow_nan:
                continue
            raise ValueError(f"{owner}.{name} must not be NaN, got {v}")
        bad_low = v <= low if low_open else v < low
        bad_high = v >= high if high_open else v > high
        if bad_low or bad_high:
            lo = "(" if low_open else "["
            hi = ")" if high_open else "]"
            raise ValueError(f"{owner}.{name} must lie in {lo}{low}, {high}{hi}, got {v:g}")
        if integer and v != math.floor(v):
            raise ValueError(f"{owner}.{name} must be a whole number, got {v:g}")


def check_bool(owner: str, name: str, value: Any) -> None:
    """Raise `ValueError` unless `value` is a boolean (a Python bool or a bool array)."""
    if isinstance(value, bool | np.bool_):
        return
    if not is_concrete(value):
        return
    if np.asarray(value).dtype != bool:
        raise ValueError(f"{owner}.{name} must be True or False, got {value!r}")


def check_sizes(owner: str, name: str, value: Any, allow_empty: bool = False) -> None:
    """Raise `ValueError` unless `value` is a tuple of positive integers (layer widths)."""
    ok = isinstance(value, tuple) and all(
        isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in value
    )
    if not ok or (not value and not allow_empty):
        raise ValueError(f"{owner}.{name} must be a tuple of positive integers, got {value!r}")


def check_counts(owner: str, obj: Any, *names: str) -> None:
    """Raise `ValueError` unless each named field of `obj` is an integer >= 1."""
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{owner}.{name} must be an integer >= 1, got {value!r}")
