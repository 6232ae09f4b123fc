"""A2C: advantage actor-critic with vectorised actors, one synchronous update per rollout.

Mnih et al. (2016), "Asynchronous methods for deep reinforcement learning" (its synchronous
variant); Sutton & Barto (2018), section 13.5 (actor-critic methods); Schulman et al.
(2016), "High-dimensional continuous control using generalized advantage estimation".

The driver steps `N = num_envs` environments (the actors, vmapped) for `n = rollout_len`
steps and hands the rollout `[n, N]` to `update`. Per environment, the advantages are
n-step returns bootstrapped from the critic, minus the critic's value:

    delta_t = r_t + gamma * d_t * V(s'_t) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   A_n = 0
    G_t     = A_t + V(s_t)                                          (the critic's target)

`d_t` is 0 only on termination, so a time limit bootstraps from the true final observation
`s'_t` while a termination does not; `done_t` (either) stops the sum at the episode's end;
the last step of the rollout bootstraps from `V(s'_{n-1})`. With `lambda = 1` (the default)
`G_t` is exactly the n-step return `r_t + gamma r_{t+1} + ... + gamma^k V(s_{t+k})` up to the
rollout's end or the episode's; `lambda < 1` gives GAE(lambda). One gradient step on

    L = -mean(log pi(a_t|s_t) * A_t) + value_coef * mean((V(s_t) - G_t)^2)
        - entropy_coef * mean(H(pi(.|s_t)))

with `A_t` and `G_t` held constant, the gradient clipped to `max_grad_norm` (global norm)
before Adam. `rljax.a3c` reuses `rollout_gradient` and `apply_gradient` for its
asynchronous actor-learners.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from rljax.driver import Preset, TrainConfig, pick_preset
from rljax.networks import ACTIVATIONS, KERNEL_INITS, MLP, check_activation, check_kernel_init
from rljax.types import Agent, Array, EnvSpec, Key, Metrics, Transition, check_values


@dataclasses.dataclass(frozen=True)
class A2CConfig:
    """Static actor-critic settings: they fix the networks' shapes.

    Attributes:
      hidden_sizes: widths of the hidden layers of the actor and of the critic (empty: both
        are linear in the observation).
      shared_torso: one torso feeding a policy head and a value head, instead of two
        separate networks.
      activation: nonlinearity after each hidden layer (`tanh` or `relu`).
      kernel_init: initializer of the hidden layers; the policy head starts near zero
        (orthogonal, scale 0.01: a near-uniform first policy), the value head orthogonal.
    """

    hidden_sizes: tuple[int, ...] = (64, 64)
    shared_torso: bool = False
    activation: str = "tanh"
    kernel_init: str = "orthogonal"

    def __post_init__(self) -> None:
        name = type(self).__name__
        if not isinstance(self.hidden_sizes, tuple) or any(
            not isinstance(h, int) or h < 1 for h in self.hidden_sizes
        ):
            raise ValueError(
                f"{name}.hidden_sizes must be a tuple of positive integers, "
                f"got {self.hidden_sizes!r}"
            )
        if self.shared_torso and not self.hidden_sizes:
            raise ValueError(f"{name}.shared_torso needs at least one hidden layer")
        if not isinstance(self.shared_torso, bool):
            raise ValueError(f"{name}.shared_torso must be a bool, got {self.shared_torso!r}")
        check_activation(name, self.activation)
        check_kernel_init(name, self.kernel_init)


@struct.dataclass
class A2CHParams:
    """Numeric actor-critic hyperparameters: traced leaves, so a batch of them is one `vmap`.

    Attributes:
      learning_rate: Adam step size (> 0).
      gamma: discount factor in [0, 1].
      gae_lambda: lambda of GAE in [0, 1]; 1 gives plain n-step returns.
      value_coef: weight of the critic's squared error in the loss (>= 0).
      entropy_coef: weight of the policy's entropy bonus (>= 0).
      max_grad_norm: the gradient's global norm is clipped to this (> 0).
      normalize_advantages: 1.0 to normalise the advantages of each rollout to mean 0 and
        standard deviation 1; 0.0 to use them as they are.
    """

    learning_rate: float = 1e-3
    gamma: float = 0.99
    gae_lambda: float = 1.0
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    max_grad_norm: float = 0.5
    normalize_advantages: float = 0.0

    def __post_init__(self) -> None:
        owner = type(self).__name__
        finite = {"high": float("inf"), "high_open": True}
        check_values(owner, "learning_rate", self.learning_rate, low=0.0, low_open=True, **finite)
        check_values(owner, "gamma", self.gamma, low=0.0, high=1.0)
        check_values(owner, "gae_lambda", self.gae_lambda, low=0.0, high=1.0)
        check_values(owner, "value_coef", self.value_coef, low=0.0, **finite)
        check_values(owner, "entropy_coef", self.entropy_coef, low=0.0, **finite)
        check_values(owner, "max_grad_norm", self.max_grad_norm, low=0.0, low_open=True, **finite)
        check_values(owner, "normalize_advantages", self.normalize_advantages, low=0.0, high=1.0)


class A2CState(NamedTuple):
    params: Any  # actor and critic
    opt_state: Any  # gradient clipping + Adam
    hparams: A2CHParams
    updates: Array  # shape=(), int32, gradient steps taken


class ActorCritic(nn.Module):
    """`obs [..., *obs_shape] -> (logits [..., A], value [...])`; either alone via
    `apply(..., method=ActorCritic.policy)` or `method=ActorCritic.value`."""

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
        batch_shape = x.shape[: x.ndim - self.obs_ndim]
        x = jnp.reshape(x, (*batch_shape, -1)).astype(jnp.float32)
        for layer in self.torso:
            x = ACTIVATIONS[self.activation](layer(x))
        return x

    def __call__(self, x: Array) -> tuple[Array, Array]:
        if self.shared_torso:
            h = self._features(x)
            return self.policy_head(h), self.value_head(h)[..., 0]
        return self.actor(x), self.critic(x)[..., 0]

    def policy(self, x: Array) -> Array:
        if self.shared_torso:
            return self.policy_head(self._features(x))
        return self.actor(x)

    def value(self, x: Array) -> Array:
        if self.shared_torso:
            return self.value_head(self._features(x))[..., 0]
        return self.critic(x)[..., 0]


def make_network(config: A2CConfig, spec: EnvSpec) -> ActorCritic:
    """The actor-critic network that `config` describes, for `spec`'s observations."""
    return ActorCritic(
        hidden_sizes=tuple(config.hidden_sizes),
        num_actions=spec.num_actions,
        shared_torso=config.shared_torso,
        activation=config.activation,
        kernel_init=config.kernel_init,
        obs_ndim=len(spec.obs_shape),
    )


def gae_advantages(
    rewards: Array,
    discounts: Array,
    dones: Array,
    values: Array,
    next_values: Array,
    gamma: Array,
    lam: Array,
) -> tuple[Array, Array]:
    """Advantages and critic targets along one environment's rollout.

    Backwards over `t`, with `A_T = 0`:
    `delta_t = r_t + gamma * d_t * V(s'_t) - V(s_t)`,
    `A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1}`, `G_t = A_t + V(s_t)`.
    With `lam = 1`, `G_t` is the n-step return bootstrapped from the critic at the
    rollout's end, at a truncation (`d_t = 1`, `done_t = True`) and nowhere after a
    termination (`d_t = 0`).

    Args:
      rewards: `[T]`.
      discounts: `[T]`, gamma-free, 0 only where the episode terminated.
      dones: `[T]` bool, the episode ended (terminated or truncated) at this step.
      values: `[T]`, `V(s_t)`.
      next_values: `[T]`, `V(s'_t)` of the true next observation (the final one at an end).
      gamma, lam: scalars.

    Returns:
      `(advantages [T], targets [T])`.
    """
    chex.assert_rank([rewards, discounts, dones, values, next_values], 1)
    chex.assert_equal_shape([rewards, discounts, dones, values, next_values])
    deltas = rewards + gamma * discounts * next_values - values
    carry_on = gamma * lam * (1.0 - dones.astype(jnp.float32))

    def step(a_next, x):
        delta_t, c_t = x
        a_t = delta_t + c_t * a_next
        return a_t, a_t

    _, advantages = jax.lax.scan(
        step, jnp.zeros((), deltas.dtype), (deltas, carry_on), reverse=True
    )
    return advantages, advantages + values


def actor_critic_loss(
    logits: Array,
    values: Array,
    actions: Array,
    advantages: Array,
    targets: Array,
    value_coef: Array,
    entropy_coef: Array,
) -> tuple[Array, Metrics]:
    """`-mean(log pi(a|s) A) + value_coef mean((V - G)^2) - entropy_coef mean(H(pi))`.

    `advantages` and `targets` are held constant. Shapes: `logits [M, A]`, `values [M]`,
    `actions [M]` int, `advantages [M]`, `targets [M]`; returns `([], metrics)`.
    """
    chex.assert_rank([logits, values, actions, advantages, targets], [2, 1, 1, 1, 1])
    advantages, targets = jax.lax.stop_gradient((advantages, targets))
    log_probs = jax.nn.log_softmax(logits)
    log_pi_a = jnp.take_along_axis(log_probs, actions[:, None], axis=-1)[:, 0]
    entropy = jnp.mean(-jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1))
    policy_loss = -jnp.mean(log_pi_a * advantages)
    value_loss = jnp.mean(jnp.square(values - targets))
    loss = policy_loss + value_coef * value_loss - entropy_coef * entropy
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}


def _optimizer(hp: A2CHParams) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(hp.max_grad_norm), optax.adam(hp.learning_rate))


def init_opt_state(params: Any) -> Any:
    """The optimizer state for `params` (its structure does not depend on the numbers)."""
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1.0)).init(params)


def rollout_gradient(
    network: ActorCritic, params: Any, rollout: Transition, hp: A2CHParams
) -> tuple[Any, Metrics]:
    """Gradient of the actor-critic loss on one rollout `[T, N]`, at `params`.

    Computes `V(s_t)` and `V(s'_t)`, the advantages and targets of `gae_advantages` per
    environment, optionally normalises the advantages over the rollout, and differentiates
    `actor_critic_loss`. Returns `(grads, metrics)`; `metrics` includes the gradient's
    global norm before clipping.
    """
    T, N = rollout.reward.shape
    obs_shape = rollout.obs.shape[2:]
    next_values = network.apply(
        params, rollout.next_obs.reshape(T * N, *obs_shape), method=ActorCritic.value
    ).reshape(T, N)

    def loss_fn(params):
        logits, values = network.apply(params, rollout.obs.reshape(T * N, *obs_shape))
        advantages, targets = jax.vmap(
            gae_advantages, in_axes=(1, 1, 1, 1, 1, None, None), out_axes=1
        )(
            rollout.reward,
            rollout.discount,
            rollout.done,
            jax.lax.stop_gradient(values.reshape(T, N)),
            next_values,
            hp.gamma,
            hp.gae_lambda,
        )
        advantages = advantages.reshape(-1)
        normalized = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        advantages = jnp.where(hp.normalize_advantages > 0.5, normalized, advantages)
        return actor_critic_loss(
            logits,
            values,
            rollout.action.reshape(-1),
            advantages,
            targets.reshape(-1),
            hp.value_coef,
            hp.entropy_coef,
        )

    grads, metrics = jax.grad(loss_fn, has_aux=True)(params)
    norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads)))
    return grads, {**metrics, "grad_norm": norm}


def apply_gradient(params: Any, opt_state: Any, grads: Any, hp: A2CHParams) -> tuple[Any, Any]:
    """One optimizer step: clip `grads` to `hp.max_grad_norm`, then Adam at
    `hp.learning_rate`. Returns `(params, opt_state)`."""
    updates, opt_state = _optimizer(hp).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def sample_actions(logits: Array, key: Key, greedy: bool) -> Array:
    """`[B, A]` logits to `[B]` int32 actions: sampled, or the argmax when `greedy`."""
    if greedy:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


def make_a2c(config: A2CConfig, spec: EnvSpec) -> Agent:
    """A2C as `Agent(init, act, update)`.

    `act` samples from the softmax policy (`greedy=True`: its argmax). `update` takes one
    gradient step on the rollout `[T, B]` (`rollout_gradient`, then `apply_gradient`).
    """
    network = make_network(config, spec)

    def init(key: Key, hparams: A2CHParams, obs: Array) -> A2CState:
        params = network.init(key, obs[None])
        return A2CState(
            params=params,
            opt_state=init_opt_state(params),
            hparams=jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), hparams),
            updates=jnp.int32(0),
        )

    def act(state: A2CState, obs: Array, key: Key, greedy: bool = False) -> Array:
        logits = network.apply(state.params, obs, method=ActorCritic.policy)
        return sample_actions(logits, key, greedy)

    def update(state: A2CState, rollout: Transition, key: Key) -> tuple[A2CState, Metrics]:
        del key
        grads, metrics = rollout_gradient(network, state.params, rollout, state.hparams)
        params, opt_state = apply_gradient(state.params, state.opt_state, grads, state.hparams)
        return state._replace(
            params=params, opt_state=opt_state, updates=state.updates + 1
        ), metrics

    return Agent(init=init, act=act, update=update)


PRESETS: dict[str, Preset] = {
    # CartPole-v1: 16 actors x 8 steps per update, Adam 1e-3, n-step returns (lambda = 1),
    # no advantage normalisation. Every 5,120 steps the greedy policy plays 32 episodes; a
    # seed stops once they average above 499. In a sweep of 16 seeds every seed stopped
    # within 157k steps, and a fresh greedy evaluation gave >= 492 on each; the benchmark's
    # 8 seeds (other keys) stopped within 369k, hence the 614k budget. Stopping on the
    # training episodes instead (last 50 above 490) left 1-2 of 16 seeds with a greedy
    # return below 475: the sampling policy can balance while its argmax drifts off.
    "cartpole": Preset(
        config=A2CConfig(hidden_sizes=(64, 64)),
        hparams=A2CHParams(learning_rate=1e-3),
        train=TrainConfig(
            total_env_steps=614_400,
            num_envs=16,
            rollout_len=8,
            log_env_steps=5_120,
            stop_return=499.0,
            stop_on="greedy",
        ),
    ),
}


def preset(name: str) -> Preset:
    """The preset called `name`; `ValueError` lists the known names."""
    return pick_preset(PRESETS, name, "A2C")
