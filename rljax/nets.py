"""Networks shared by the algorithms (flax): an MLP (with a convolutional torso for image
observations), and an actor-critic pair."""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rljax.core.types import Array, EnvSpec


@jax.jit
def orthonormal_columns(a: Array) -> Array:
    """The `Q` of `a = QR` with `R`'s diagonal positive, for `a [m, n]` with `m >= n`: Gram-
    Schmidt, each column orthogonalised twice against the ones before (stable to float32
    rounding), in plain array operations.

    `jnp.linalg.qr` would give the same `Q` (up to the signs `orthogonal` fixes), but on a
    CPU a batched QR (under `vmap` over seeds) runs LAPACK in XLA's intra-op thread pool and
    waits there for sub-tasks queued on the same pool: two at once can wait on each other
    forever (seen as a hang of A2C's `init` on 2 cores; native stacks in both pool threads
    were in `QrFactorization` -> `ParallelBatchMap` -> `BlockingCounter::Wait`).

    Jitted so that it is traced once per shape: flax traces a parameter's initializer on
    every `apply` too (`jax.eval_shape`, to check the parameter's shape), which cost A2C's
    chunk a tenth of its tracing time.
    """
    m, n = a.shape
    if m < n:
        raise ValueError(f"orthonormal_columns needs rows >= columns, got shape {a.shape}")

    def column(j, q):
        v = a[:, j]
        for _ in range(2):  # columns j.. of q are still 0, so they take no part
            v = v - q @ (q.T @ v)
        return q.at[:, j].set(v / jnp.linalg.norm(v))

    return jax.lax.fori_loop(0, n, column, jnp.zeros_like(a))


def orthogonal(scale: float | Array = 1.0, column_axis: int = -1) -> nn.initializers.Initializer:
    """Saxe et al. (2014)'s orthogonal initializer, drawn as `nn.initializers.orthogonal`
    draws it (a normal matrix, its `Q` with `R`'s diagonal positive, times `scale`) but
    without LAPACK (`orthonormal_columns`), so that a vmapped `init` cannot deadlock."""

    def init(key: Array, shape: Sequence[int], dtype=jnp.float32) -> Array:
        shape = tuple(shape)
        n_cols = shape[column_axis]
        n_rows = math.prod(shape) // n_cols
        transpose = n_rows < n_cols
        a = jax.random.normal(key, (n_cols, n_rows) if transpose else (n_rows, n_cols), dtype)
        q = orthonormal_columns(a)
        q = q.T if transpose else q
        rest = tuple(d for i, d in enumerate(shape) if i != column_axis % len(shape))
        q = jnp.moveaxis(jnp.reshape(q, (*rest, n_cols)), -1, column_axis)
        return jnp.asarray(scale, dtype) * q

    return init


KERNEL_INITS = {
    "lecun_normal": nn.initializers.lecun_normal(),
    "he_uniform": nn.initializers.he_uniform(),
    "glorot_uniform": nn.initializers.glorot_uniform(),
    "orthogonal": orthogonal(jnp.sqrt(2.0)),
}


ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh}

ConvSpec = tuple[tuple[int, int, int], ...]  # (features, kernel size, stride) per layer

# Young & Tian (2019), "MinAtar": one 3x3 convolution of 16 channels, stride 1, ReLU (the
# dense 128 layer after it is a config's `hidden_sizes`).
MINATAR_CONV: ConvSpec = ((16, 3, 1),)


def check_kernel_init(owner: str, name: str) -> None:
    """Raise `ValueError` unless `name` is a known kernel initializer."""
    if name not in KERNEL_INITS:
        raise ValueError(f"{owner}.kernel_init must be one of {sorted(KERNEL_INITS)}, got {name!r}")


def check_activation(owner: str, name: str) -> None:
    """Raise `ValueError` unless `name` is a known activation."""
    if name not in ACTIVATIONS:
        raise ValueError(f"{owner}.activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")


def check_conv(owner: str, conv: ConvSpec | None) -> None:
    """Raise `ValueError` unless `conv` is None (the default for the observations) or a tuple
    of `(features, kernel, stride)` triples of positive integers (`()`: no convolution)."""

    def layer_ok(layer: object) -> bool:
        return (
            isinstance(layer, tuple)
            and len(layer) == 3
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in layer)
        )

    if conv is not None and not (isinstance(conv, tuple) and all(map(layer_ok, conv))):
        raise ValueError(
            f"{owner}.conv must be None or a tuple of (features, kernel, stride) triples of "
            f"positive integers, got {conv!r}"
        )


def conv_layers(conv: ConvSpec | None, obs_ndim: int) -> ConvSpec:
    """The convolutions a network applies: `conv` itself, or for `None` the MinAtar torso
    (`MINATAR_CONV`) on image observations (`obs_ndim >= 2`) and none on vectors."""
    if conv is None:
        return MINATAR_CONV if obs_ndim >= 2 else ()
    if conv and obs_ndim < 2:
        raise ValueError(
            f"conv={conv!r} needs image observations [H, W, C] (obs_ndim >= 2), "
            f"got obs_ndim={obs_ndim}"
        )
    return tuple(conv)


class PatchConv(nn.Module):
    """A 2-D convolution, VALID padding: `[N, H, W, C] -> [N, H', W', features]`, with
    `H' = (H - kernel) // stride + 1`.

    The same function and parameters (`kernel [k, k, C, features]`, `bias [features]`) as
    `flax.linen.Conv(features, (k, k), (stride, stride), "VALID")`, computed as one matrix
    product of the image's `k * k` shifted patches with the kernel: on CPU several times
    faster than XLA's convolution for these small images, also under `vmap` over seeds.
    """

    features: int
    kernel: int
    stride: int = 1
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: Array) -> Array:
        k, s = self.kernel, self.stride
        w = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features))
        b = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        out_h, out_w = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
        patches = jnp.concatenate(
            [
                x[:, i : i + s * (out_h - 1) + 1 : s, j : j + s * (out_w - 1) + 1 : s, :]
                for i in range(k)
                for j in range(k)
            ],
            axis=-1,
        )  # [N, H', W', k * k * C], ordered like the kernel's (k, k, C) axes
        return patches @ w.reshape(-1, self.features) + b


class ConvTorso(nn.Module):
    """`[*batch, *obs_shape] -> [*batch, F]` float32: the convolutions of `conv`
    (`PatchConv`, VALID padding, `activation` after each) over `[H, W, C]` images,
    channels last, flattened.

    Observations `[H, W]` get one channel; `[H, W, C1, C2, ...]` have their trailing axes
    merged into channels. With `conv == ()` it only flattens (`flatten_obs`) and holds no
    parameters. Raises `ValueError` when a kernel does not fit its input.
    """

    conv: ConvSpec
    obs_ndim: int
    kernel_init: str = "lecun_normal"
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        if not self.conv:
            return flatten_obs(x, self.obs_ndim)
        batch_shape = x.shape[: x.ndim - self.obs_ndim]
        obs_shape = x.shape[x.ndim - self.obs_ndim :]
        x = jnp.reshape(x, (-1, obs_shape[0], obs_shape[1], math.prod(obs_shape[2:])))
        x = x.astype(jnp.float32)
        init, act = KERNEL_INITS[self.kernel_init], ACTIVATIONS[self.activation]
        for features, kernel, stride in self.conv:
            if kernel > min(x.shape[1:3]):
                raise ValueError(
                    f"conv kernel {kernel} does not fit the {x.shape[1]}x{x.shape[2]} input "
                    f"of conv={self.conv!r} for observations {tuple(obs_shape)}"
                )
            x = act(PatchConv(features, kernel, stride, kernel_init=init)(x))
        return jnp.reshape(x, (*batch_shape, -1))


def flatten_obs(x: Array, obs_ndim: int) -> Array:
    """`[*batch, *obs_shape] -> [*batch, prod(obs_shape)]` float32."""
    batch_shape = x.shape[: x.ndim - obs_ndim]
    return jnp.reshape(x, (*batch_shape, -1)).astype(jnp.float32)


class MLP(nn.Module):
    """Multi-layer perceptron: `[..., *obs_shape] -> [..., out]`, `activation` (ReLU by
    default) after each hidden layer; no hidden layer makes it a linear model.

    Image observations (`obs_ndim >= 2`, `[H, W, C]` channels last) first go through the
    convolutional torso `conv` (`conv_layers`: by default MinAtar's one 3x3 convolution of
    16 channels); anything else is flattened after its batch axes (`x.ndim - obs_ndim`).
    Vector observations give the same parameters as an MLP without `conv`.
    """

    hidden_sizes: Sequence[int]
    out_size: int
    obs_ndim: int = 1
    kernel_init: str = "lecun_normal"
    activation: str = "relu"
    conv: ConvSpec | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        conv = conv_layers(self.conv, self.obs_ndim)
        x = ConvTorso(conv, self.obs_ndim, self.kernel_init, self.activation)(x)
        init, act = KERNEL_INITS[self.kernel_init], ACTIVATIONS[self.activation]
        for size in self.hidden_sizes:
            x = act(nn.Dense(size, kernel_init=init)(x))
        return nn.Dense(self.out_size, kernel_init=init)(x)


def q_network(
    hidden_sizes: Sequence[int], kernel_init: str, spec: EnvSpec, conv: ConvSpec | None = None
) -> MLP:
    """An MLP from observations `[..., *spec.obs_shape]` to action values `[..., A]`, after
    the convolutional torso `conv` for image observations (`MLP`)."""
    conv_layers(conv, len(spec.obs_shape))  # a conv spec on vector observations: ValueError
    return MLP(
        hidden_sizes=tuple(hidden_sizes),
        out_size=spec.num_actions,
        obs_ndim=len(spec.obs_shape),
        kernel_init=kernel_init,
        conv=conv,
    )


class ActorCritic(nn.Module):
    """`obs [..., *obs_shape] -> (logits [..., A], value [...])`; either alone via
    `apply(..., method=ActorCritic.policy)` or `method=ActorCritic.value`.

    Two separate MLPs (widths `actor_hidden_sizes` and `critic_hidden_sizes`, each
    `hidden_sizes` when None), or with `shared_torso` one torso feeding a policy head and a
    value head. The heads start small: the policy head orthogonal with scale 0.01 (a near-uniform
    first policy), the value head orthogonal with scale 1. Image observations first go
    through the convolutions `conv` (`conv_layers`; each network its own, or the shared
    torso's), with `activation` after each.
    """

    hidden_sizes: tuple[int, ...]
    num_actions: int
    shared_torso: bool = False
    activation: str = "tanh"
    kernel_init: str = "orthogonal"
    obs_ndim: int = 1
    conv: ConvSpec | None = None
    actor_hidden_sizes: tuple[int, ...] | None = None
    critic_hidden_sizes: tuple[int, ...] | None = None

    def setup(self) -> None:
        policy_init = orthogonal(0.01)
        value_init = orthogonal(1.0)
        if self.shared_torso:
            init = KERNEL_INITS[self.kernel_init]
            conv = conv_layers(self.conv, self.obs_ndim)
            self.conv_torso = ConvTorso(conv, self.obs_ndim, self.kernel_init, self.activation)
            self.torso = [nn.Dense(h, kernel_init=init) for h in self.hidden_sizes]
            self.policy_head = nn.Dense(self.num_actions, kernel_init=policy_init)
            self.value_head = nn.Dense(1, kernel_init=value_init)
        else:
            mlp = lambda sizes, out: MLP(  # noqa: E731
                self.hidden_sizes if sizes is None else sizes,
                out, self.obs_ndim, self.kernel_init, self.activation, self.conv,
            )  # fmt: skip
            self.actor = mlp(self.actor_hidden_sizes, self.num_actions)
            self.critic = mlp(self.critic_hidden_sizes, 1)

    def _features(self, x: Array) -> Array:
        x = self.conv_torso(x)
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
