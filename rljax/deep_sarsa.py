"""Deep SARSA: an MLP Q-function trained online, at every step, towards
`r + gamma * Q(s', a')` with the next action `a'` actually taken.

Sutton & Barto (2018), section 10.1 (episodic semi-gradient SARSA). Unlike DQN there is
no replay memory and no target network: each transition is used once, in order, as it
happens, and the bootstrap uses the same network being trained. That difference is the
point of the algorithm in the course (and the reason it is less stable than DQN).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from rljax.exploration import epsilon_at, epsilon_greedy
from rljax.networks import MLP, check_kernel_init
from rljax.types import Agent, Array, EnvSpec, Key, Metrics, Transition, check_values


@dataclasses.dataclass(frozen=True)
class DeepSARSAConfig:
    """Static Deep SARSA settings.

    Attributes:
      hidden_sizes: widths of the Q-network's hidden ReLU layers.
      kernel_init: weight initializer, one of `rljax.networks.KERNEL_INITS`.
      num_envs: environments the driver runs (`B`); the agent keeps one waiting
        transition per environment.
    """

    hidden_sizes: tuple[int, ...] = (30, 30)
    kernel_init: str = "he_uniform"
    num_envs: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.num_envs, int) or self.num_envs < 1:
            raise ValueError(
                f"DeepSARSAConfig.num_envs must be an integer >= 1, got {self.num_envs!r}"
            )
        if not self.hidden_sizes or any(not isinstance(h, int) or h < 1 for h in self.hidden_sizes):
            raise ValueError(
                f"DeepSARSAConfig.hidden_sizes must be positive integers, got {self.hidden_sizes!r}"
            )
        check_kernel_init("DeepSARSAConfig", self.kernel_init)


@struct.dataclass
class DeepSARSAHParams:
    """Traced Deep SARSA hyperparameters (the course's values by default).

    Attributes:
      learning_rate: Adam step size.
      gamma: discount factor in [0, 1].
      epsilon, epsilon_end, epsilon_decay: exploration rate
        `max(epsilon_end, epsilon * epsilon_decay ** updates)`.
    """

    learning_rate: float = 1e-3
    gamma: float = 0.99
    epsilon: float = 1.0
    epsilon_end: float = 0.01
    epsilon_decay: float = 0.9999

    def __post_init__(self) -> None:
        check = lambda name, **kw: check_values("DeepSARSAHParams", name, getattr(self, name), **kw)  # noqa: E731
        check("learning_rate", low=0.0, low_open=True, high=math.inf)
        check("gamma", low=0.0, high=1.0)
        check("epsilon", low=0.0, high=1.0)
        check("epsilon_end", low=0.0, high=1.0)
        check("epsilon_decay", low=0.0, high=1.0)


class DeepSARSAState(NamedTuple):
    params: Any  # the Q-network
    opt_state: Any
    hparams: DeepSARSAHParams
    pending: Transition  # [B], the last transition, waiting for its next action
    has_pending: Array  # shape=(), bool
    updates: Array  # shape=(), int32, gradient steps taken


def sarsa_target(r_t: Array, discount_t: Array, q_t: Array, a_t: Array, gamma: Array) -> Array:
    """`r_t + gamma * discount_t * Q(s_t, a_t)` with `a_t` the next action actually taken
    (not the greedy one). `q_t: [A]`, the rest `[]`; returns `[]`."""
    chex.assert_rank([r_t, discount_t, q_t, a_t], [0, 0, 1, 0])
    return r_t + gamma * discount_t * q_t[a_t]


def make_deep_sarsa(config: DeepSARSAConfig, spec: EnvSpec) -> Agent:
    """Deep SARSA as `Agent(init, act, update)`.

    `update` receives a rollout `[T, B]`. Each transition is learned from once, in time
    order, by one Adam step on `mean_B (Q(s, a) - y)^2` with `y = sarsa_target(...)` held
    fixed. Its next action is the one taken at the following step; the last transition of
    a rollout waits in the state until the next rollout supplies it. At a time-limit
    truncation no next action is taken, so one is drawn from the current epsilon-greedy
    policy at the final observation; after a termination none is needed.
    """
    network = MLP(
        hidden_sizes=tuple(config.hidden_sizes),
        out_size=spec.num_actions,
        obs_ndim=len(spec.obs_shape),
        kernel_init=config.kernel_init,
    )
    B = config.num_envs

    def init(key: Key, hparams: DeepSARSAHParams, obs: Array) -> DeepSARSAState:
        params = network.init(key, obs[None])
        zeros = jnp.zeros((B,), jnp.float32)
        obs_b = jnp.zeros((B, *obs.shape), obs.dtype)
        pending = Transition(obs_b, jnp.zeros((B,), jnp.int32), zeros, zeros, obs_b, zeros > 0)
        return DeepSARSAState(
            params=params,
            opt_state=optax.adam(1.0).init(params),
            hparams=jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), hparams),
            pending=pending,
            has_pending=jnp.bool_(False),
            updates=jnp.int32(0),
        )

    def act(state: DeepSARSAState, obs: Array, key: Key, greedy: bool = False) -> Array:
        q = network.apply(state.params, obs)
        if greedy:
            return jnp.argmax(q, axis=-1).astype(jnp.int32)
        return epsilon_greedy(key, q, epsilon_at(state.hparams, state.updates))

    def update(state: DeepSARSAState, rollout: Transition, key: Key):
        if rollout.done.shape[1] != B:
            got = rollout.done.shape[1]
            raise ValueError(f"make_deep_sarsa was built with num_envs={B}, the driver runs {got}")
        hp = state.hparams
        optimizer = optax.adam(hp.learning_rate)
        seq = jax.tree.map(lambda p, r: jnp.concatenate([p[None], r]), state.pending, rollout)
        valid = jnp.ones(seq.done.shape[0], bool).at[0].set(state.has_pending)
        now = jax.tree.map(lambda x: x[:-1], seq)
        inputs = (now, seq.action[1:], valid[:-1], jax.random.split(key, seq.done.shape[0] - 1))

        def step(carry, inp):
            params, opt_state, updates = carry
            tr, next_action, ok, k = inp
            q_next = network.apply(params, tr.next_obs)
            eps = epsilon_at(hp, updates)
            drawn = epsilon_greedy(k, q_next, eps)
            a_next = jnp.where(tr.done, drawn, next_action)
            y = jax.vmap(sarsa_target, in_axes=(0, 0, 0, 0, None))(
                tr.reward, tr.discount, q_next, a_next, hp.gamma
            )
            y = jax.lax.stop_gradient(y)

            def loss_fn(p):
                q = network.apply(p, tr.obs)
                q_a = jnp.take_along_axis(q, tr.action[:, None], axis=-1)[:, 0]
                return jnp.mean(jnp.square(q_a - y))

            loss, grads = jax.value_and_grad(loss_fn)(params)
            upd, new_opt = optimizer.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, upd)
            keep = lambda n, o: jax.tree.map(lambda a, b: jnp.where(ok, a, b), n, o)  # noqa: E731
            carry = (keep(new_params, params), keep(new_opt, opt_state), updates + ok)
            return carry, jnp.where(ok, loss, jnp.nan)

        (params, opt_state, updates), losses = jax.lax.scan(
            step, (state.params, state.opt_state, state.updates), inputs
        )
        new_state = DeepSARSAState(
            params=params,
            opt_state=opt_state,
            hparams=hp,
            pending=jax.tree.map(lambda x: x[-1], seq),
            has_pending=jnp.bool_(True),
            updates=updates,
        )
        metrics: Metrics = {"loss": jnp.nanmean(losses), "epsilon": epsilon_at(hp, updates)}
        return new_state, metrics

    return Agent(init=init, act=act, update=update)
