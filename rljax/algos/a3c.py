"""A3C: asynchronous advantage actor-critic, its asynchrony emulated deterministically.

Mnih et al. (2016), "Asynchronous methods for deep reinforcement learning"; Recht et al.
(2011), "Hogwild!" (lock-free asynchronous gradient steps).

`K = num_learners` actor-learners each own `N = num_envs / K` of the driver's environments
(learner `k` the `k`-th contiguous block) and a local copy of the actor-critic parameters.
A global parameter set and one optimizer state are shared. One *round* (one driver update):

1. every learner acts in its environments with its **local** parameters for `n` steps;
2. every learner computes the A2C gradient of its own rollout at its local parameters
   (`rljax.algos.a2c.rollout_gradient`), which may be stale;
3. the `K` gradients are applied to the global parameters one after another, in an order
   drawn afresh each round from the update's key (a `lax.scan`), each as its own optimizer
   step (clipping, Adam): `K` optimizer steps per round;
4. learner `k` copies the global parameters into its local copy before round `r` when
   `r = k (mod sync_every)`: with `sync_every = 1` before every rollout, as in the paper;
   with larger values the learners refresh in turn, each every `sync_every` rounds.

What this reproduces of thread-level asynchrony: gradients computed at parameters that are
older than the ones they are applied to (the `staleness` metric counts the optimizer steps
in between; with `sync_every = 1` the gradient applied `i`-th in a round is `i` steps
stale), applied one at a time to shared parameters and a shared optimizer state in an
order no learner controls. What it does not: threads that race within one parameter
update (Hogwild's torn reads and writes), learners that run at different speeds (here
every learner contributes exactly one rollout per round), and nondeterminism: the same key
gives the same result, and every seed and hyperparameter setting is `vmap`pable. With
`K = 1` and `sync_every = 1` A3C is A2C.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rljax import optim
from rljax.algos import a2c
from rljax.algos.a2c import (
    A2CConfig,
    A2CHParams,
    apply_gradient,
    make_network,
    rollout_gradient,
)
from rljax.core.config import Preset, pick_preset
from rljax.core.types import Agent, Array, EnvSpec, Key, Metrics, Transition
from rljax.core.validation import as_leaves, check_values, hyperparameters
from rljax.exploration import softmax_policy
from rljax.nets import ActorCritic


@dataclasses.dataclass(frozen=True)
class A3CConfig(A2CConfig):
    """Static A3C settings: the networks' shapes (the fields of `A2CConfig`) and the learners.

    Attributes:
      num_learners: actor-learners `K`; the driver's `num_envs` must be a multiple of it.
    """

    num_learners: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.num_learners, int) or self.num_learners < 1:
            raise ValueError(
                f"A3CConfig.num_learners must be an integer >= 1, got {self.num_learners!r}"
            )


@hyperparameters
class A3CHParams(A2CHParams):
    """Numeric A3C hyperparameters: the fields of `A2CHParams` (each learner's gradient
    clipped and its advantages normalised on their own), and the learners' refresh period.

    Attributes:
      sync_every: rounds between two refreshes of a learner's local parameters (a whole
        number >= 1; traced, so a `vmap` can sweep staleness).
    """

    sync_every: float = 1.0

    def validate(self) -> None:
        super().validate()
        check_values("A3CHParams", "sync_every", self.sync_every, low=1.0, high=1e9, integer=True)


class A3CState(NamedTuple):
    params: Any  # the global parameters (what the greedy policy uses)
    local_params: Any  # each leaf [K, ...], the learners' own copies
    local_version: Array  # [K] int32, global optimizer steps when each copy was taken
    opt_state: Any  # shared: gradient clipping + Adam
    hparams: A3CHParams
    rounds: Array  # shape=(), int32, rounds completed (driver updates)
    gradient_steps: Array  # shape=(), int32, optimizer steps applied to the global parameters


def _per_learner(x: Array, axis: int, K: int) -> Array:
    """Split the environments axis `B` of `x` into `[K, B / K]`, learner `k` the `k`-th block."""
    B = x.shape[axis]
    if B % K:
        raise ValueError(
            f"TrainConfig.num_envs={B} must be a multiple of A3CConfig.num_learners={K}"
        )
    return x.reshape(*x.shape[:axis], K, B // K, *x.shape[axis + 1 :])


def make_a3c(config: A3CConfig, spec: EnvSpec) -> Agent:
    """A3C as `Agent(init, act, update)`, one driver update being one round (module doc).

    `act` on `[B]` observations acts with each learner's local parameters on its block of
    `B / K` environments (`greedy=True`: the global parameters' argmax, for evaluation).
    `update` takes the rollout `[T, B]`, splits it into the learners' `[T, B / K]`
    rollouts, and applies their gradients to the global parameters in a random order.
    """
    network = make_network(config, spec)
    K = config.num_learners
    per_learner = lambda x, axis: _per_learner(x, axis, K)  # noqa: E731

    def init(key: Key, hparams: A3CHParams, obs: Array) -> A3CState:
        per_learner(obs, 0)  # checks that the environments split evenly
        params = network.init(key, obs)
        hparams = as_leaves(hparams)
        return A3CState(
            params=params,
            local_params=jax.tree.map(lambda p: jnp.broadcast_to(p, (K, *p.shape)), params),
            local_version=jnp.zeros((K,), jnp.int32),
            opt_state=optim.init(params, hparams.learning_rate),
            hparams=hparams,
            rounds=jnp.int32(0),
            gradient_steps=jnp.int32(0),
        )

    def act(state: A3CState, obs: Array, key: Key, greedy: bool = False) -> Array:
        if greedy:
            logits = network.apply(state.params, obs, method=ActorCritic.policy)
        else:
            policy = lambda p, o: network.apply(p, o, method=ActorCritic.policy)  # noqa: E731
            logits = jax.vmap(policy)(state.local_params, per_learner(obs, 0))
            logits = logits.reshape(obs.shape[0], -1)
        return softmax_policy(key, logits, greedy)

    def update(state: A3CState, rollout: Transition, key: Key) -> tuple[A3CState, Metrics]:
        hp = state.hparams
        rollouts = jax.tree.map(lambda x: jnp.moveaxis(per_learner(x, 1), 1, 0), rollout)
        grads, metrics = jax.vmap(lambda p, r: rollout_gradient(network, p, r, hp))(
            state.local_params, rollouts
        )

        def apply_one(carry, k):
            params, opt_state, step = carry
            g = jax.tree.map(lambda x: x[k], grads)
            params, opt_state = apply_gradient(params, opt_state, g, hp)
            return (params, opt_state, step + 1), step - state.local_version[k]

        order = jax.random.permutation(key, K)
        (params, opt_state, steps), staleness = jax.lax.scan(
            apply_one, (state.params, state.opt_state, state.gradient_steps), order
        )
        rounds = state.rounds + 1
        sync_every = jnp.round(hp.sync_every).astype(jnp.int32)
        refresh = jnp.mod(rounds - jnp.arange(K), sync_every) == 0
        local_params = jax.tree.map(
            lambda local, new: jnp.where(refresh.reshape(K, *([1] * new.ndim)), new[None], local),
            state.local_params,
            params,
        )
        new_state = A3CState(
            params=params,
            local_params=local_params,
            local_version=jnp.where(refresh, steps, state.local_version),
            opt_state=opt_state,
            hparams=hp,
            rounds=rounds,
            gradient_steps=steps,
        )
        metrics = jax.tree.map(jnp.mean, metrics)
        metrics["staleness"] = jnp.mean(staleness.astype(jnp.float32))
        return new_state, metrics

    return Agent(init=init, act=act, update=update)


PRESETS: dict[str, Preset] = {
    # CartPole-v1: 4 learners x 4 actors x 8 steps per round, refreshed every round, with
    # the A2C preset's network, budget and greedy stopping rule (32 greedy episodes every
    # 5,120 steps above 499), and its hyperparameters but for plain 8-step returns
    # (lambda = 1; 8 of 8 seeds in benchmarks/actor_critic.py). In a sweep of 16 seeds
    # every seed stopped within 26k steps (A2C: 157k; 4 optimizer steps per round), and a
    # fresh greedy evaluation gave >= 490 on each; at 7e-4, 16 of 16 as well.
    "cartpole": Preset(
        config=A3CConfig(hidden_sizes=(64, 64), num_learners=4),
        hparams=A3CHParams(learning_rate=1e-3, sync_every=1.0),
        train_config=a2c.PRESETS["cartpole"].train_config,
    ),
}


# Breakout-MinAtar: the course's Atari A3C (`3-atari/1-breakout/breakout_a3c.py`) with
# its 8 actor-learners and t_max = 20, each learner refreshed from the global parameters
# before every rollout; 2 environments per learner (course: 1), and the network, Adam,
# clipping and budget of A2C's `breakout` preset (see there what was kept and changed).
# Adam 1e-3 rather than A2C's 2e-3: 8 optimizer steps per round; 5e-4 learned more slowly
# (2 seeds each, 160k steps). Measured in benchmarks/breakout.py (README "Pixels").
PRESETS["breakout"] = Preset(
    config=A3CConfig(
        hidden_sizes=(128,),
        shared_torso=True,
        activation="relu",
        conv=((16, 3, 1),),
        num_learners=8,
    ),
    hparams=A3CHParams(learning_rate=1e-3, entropy_coef=0.01, clip_rewards=True, sync_every=1.0),
    train_config=a2c.PRESETS["breakout"].train_config,
)


def preset(name: str) -> Preset:
    """The preset called `name`; `ValueError` lists the known names."""
    return pick_preset(PRESETS, name, "A3C")
