"""Small networks shared by the algorithms."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

KERNEL_INITS = {
    "lecun_normal": nn.initializers.lecun_normal(),
    "he_uniform": nn.initializers.he_uniform(),
    "orthogonal": nn.initializers.orthogonal(jnp.sqrt(2.0)),
}


ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh}


def check_kernel_init(owner: str, name: str) -> None:
    """Raise `ValueError` unless `name` is a known kernel initializer."""
    if name not in KERNEL_INITS:
        raise ValueError(f"{owner}.kernel_init must be one of {sorted(KERNEL_INITS)}, got {name!r}")


def check_activation(owner: str, name: str) -> None:
    """Raise `ValueError` unless `name` is a known activation."""
    if name not in ACTIVATIONS:
        raise ValueError(f"{owner}.activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")


class MLP(nn.Module):
    """Multi-layer perceptron: `[..., in] -> [..., out]`, `activation` (ReLU by default)
    after each hidden layer; no hidden layer makes it a linear model.

    The input is flattened after its batch axes (`obs.ndim - obs_ndim`) so image-like
    observations work too.
    """

    hidden_sizes: Sequence[int]
    out_size: int
    obs_ndim: int = 1
    kernel_init: str = "lecun_normal"
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        batch_shape = x.shape[: x.ndim - self.obs_ndim]
        x = jnp.reshape(x, (*batch_shape, -1)).astype(jnp.float32)
        init, act = KERNEL_INITS[self.kernel_init], ACTIVATIONS[self.activation]
        for size in self.hidden_sizes:
            x = act(nn.Dense(size, kernel_init=init)(x))
        return nn.Dense(self.out_size, kernel_init=init)(x)
