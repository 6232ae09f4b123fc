"""Networks shared by the algorithms (flax): an MLP, and an actor-critic pair."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rljax.core.types import Array, EnvSpec

KERNEL_INITS = {
    "lecun_normal": nn.initializers.lecun_normal(),
    "he_uniform": nn.initializers.he_uniform(),
    "glorot_uniform": nn.initializers.glorot_uniform(),
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


def flatten_obs(x: Array, obs_ndim: int) -> Array:
    """`[*batch, *obs_shape] -> [*batch, prod(obs_shape)]` float32."""
    batch_shape = x.shape[: x.ndim - obs_ndim]
    return jnp.reshape(x, (*batch_shape, -1)).astype(jnp.float32)


class MLP(nn.Module):
    """Multi-layer perceptron: `[..., *obs_shape] -> [..., out]`, `activation` (ReLU by
    default) after each hidden layer; no hidden layer makes it a linear model.

    The input is flattened after its batch axes (`x.ndim - obs_ndim`) so image-like
    observations work too.
    """

    hidden_sizes: Sequence[int]
    out_size: int
    obs_ndim: int = 1
    kernel_init: str = "lecun_normal"
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = flatten_obs(x, self.obs_ndim)
        init, act = KERNEL_INITS[self.kernel_init], ACTIVATIONS[self.activation]
        for size in self.hidden_sizes:
            x = act(nn.Dense(size, kernel_init=init)(x))
        return nn.Dense(self.out_size, kernel_init=init)(x)


def q_network(hidden_sizes: Sequence[int], kernel_init: str, spec: EnvSpec) -> MLP:
    """An MLP from observations `[..., *spec.obs_shape]` to action values `[..., A]`."""
    return MLP(
        hidden_sizes=tuple(hidden_sizes),
        out_size=spec.num_actions,
        obs_ndim=len(spec.obs_shape),
        kernel_init=kernel_init,
    )


class ActorCritic(nn.Module):
    """`obs [..., *obs_shape] -> (logits [..., A], value [...])`; either alone via
    `apply(..., method=ActorCritic.policy)` or `method=ActorCritic.value`.

    Two separate MLPs, or with `shared_torso` one torso feeding a policy head and a value
    head. The heads start small: the policy head orthogonal with scale 0.01 (a near-uniform
    first policy), the value head orthogonal with scale 1.
    """

    hidden_sizes: tuple[int, ...]
    num_actions: int
    shared_torso: bool = False
    activation: str = "tanh"
    kernel_init: str = "orthogonal"
    obs_ndim: int = 1

    def setup(self) -> None:
        policy_init = nn.initializers.orthogonal(0.01)
        value_init = nn.initializers.orthogonal(1.0)
        if self.shared_torso:
            init = KERNEL_INITS[self.kernel_init]
            self.torso = [nn.Dense(h, kernel_init=init) for h in self.hidden_sizes]
            self.policy_head = nn.Dense(self.num_actions, kernel_init=policy_init)
            self.value_head = nn.Dense(1, kernel_init=value_init)
        else:
            mlp = lambda out: MLP(  # noqa: E731
                self.hidden_sizes, out, self.obs_ndim, self.kernel_init, self.activation
            )
            self.actor, self.critic = mlp(self.num_actions), mlp(1)

    def _features(self, x: Array) -> Array:
        x = flatten_obs(x, self.obs_ndim)
        for layer in self.torso:
            x = ACTIVATIONS[self.activation](layer(x))
        return x

    def __call__(self, x: Array) -> tuple[Array, Array]:
        return self.policy(x), self.value(x)

    def policy(self, x: Array) -> Array:
        if self.shared_torso:
            return self.policy_head(self._features(x))
        return self.actor(x)

    def value(self, x: Array) -> Array:
        if self.shared_torso:
            return self.value_head(self._features(x))[..., 0]
        return self.critic(x)[..., 0]
