"""REINFORCE: Monte-Carlo policy gradient, optionally with a learned state-value baseline.

Williams (1992), "Simple statistical gradient-following algorithms for connectionist
reinforcement learning"; Sutton & Barto (2018), sections 13.3 (REINFORCE) and 13.4
(REINFORCE with baseline).

Episodes and rollouts. The driver hands `update` rollouts `[T, B]` that need not line up
with episodes (the environments auto-reset). Each step's return `G_t` is summed backwards
through the rollout and stops at the episode boundary `done_t` (termination *or*
truncation: REINFORCE never bootstraps, so a time limit also ends the Monte-Carlo return).
A step counts (is *valid*) only if its episode ends within the rollout at or after it;
steps of an episode still running when the rollout ends are masked out, since their return
is incomplete. No incomplete return is ever used as if it were complete, but which steps
count depends on whether their episode finished inside the window, which favours the tails
of episodes and short episodes. Use `rollout_len` at least the environment's step limit
(the presets use exactly the limit): then every episode that starts in a rollout either
ends in it or ends in the next one, where its tail is counted, and the share of masked
steps stays moderate (see the `valid_fraction` metric).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rljax import losses, optim
from rljax.core.config import Preset, TrainConfig, pick_preset
from rljax.core.types import Agent, Array, EnvSpec, Key, Metrics, Transition
from rljax.core.validation import (
    as_leaves,
    check_bool,
    check_sizes,
    check_values,
    hyperparameters,
)
from rljax.exploration import softmax_policy
from rljax.nets import MLP


@dataclasses.dataclass(frozen=True)
class ReinforceConfig:
    """Static REINFORCE settings: they fix shapes.

    Attributes:
      hidden_sizes: widths of the policy's hidden ReLU layers (softmax over actions); the
        baseline network, if any, has the same widths.
      baseline: learn a state-value network `V(s)` by regression on `G_t` and use
        `G_t - V(s_t)` as the advantage (Sutton & Barto 13.4).
    """

    hidden_sizes: tuple[int, ...] = (32, 32)
    baseline: bool = False

    def __post_init__(self) -> None:
        check_sizes("ReinforceConfig", "hidden_sizes", self.hidden_sizes)
        if not isinstance(self.baseline, bool):
            raise ValueError(f"ReinforceConfig.baseline must be a bool, got {self.baseline!r}")


@hyperparameters
class ReinforceHParams:
    """REINFORCE hyperparameters: traced leaves, so a batch of them is one `vmap`.

    Attributes:
      learning_rate: Adam step size, for the policy and the baseline.
      gamma: discount factor in [0, 1].
      normalize_returns: normalise the advantages to mean 0 and standard deviation 1 over
        the valid entries of each rollout.
      entropy_coef: weight of the policy's entropy bonus (>= 0).
    """

    learning_rate: float = 1e-3
    gamma: float = 0.99
    normalize_returns: bool = True
    entropy_coef: float = 0.0

    def validate(self) -> None:
        check = lambda name, **kw: check_values(  # noqa: E731
            "ReinforceHParams", name, getattr(self, name), **kw
        )
        check("learning_rate", low=0.0, low_open=True)
        check("gamma", low=0.0, high=1.0)
        check("entropy_coef", low=0.0)
        check_bool("ReinforceHParams", "normalize_returns", self.normalize_returns)


class ReinforceState(NamedTuple):
    params: Any  # policy network (logits)
    baseline_params: Any  # state-value network; {} without a baseline
    opt_state: Any  # Adam over (params, baseline_params)
    hparams: ReinforceHParams
    gradient_steps: Array  # shape=(), int32


def make_reinforce(config: ReinforceConfig, spec: EnvSpec) -> Agent:
    """REINFORCE as `Agent(init, act, update)`.

    `act` samples from the softmax policy (`greedy=True`: its argmax). `update` computes
    `losses.discounted_returns` for each of the `B` environments of the rollout (`[T, B]`),
    forms the advantages `A_t = G_t` (or `G_t - V(s_t)` with the baseline), optionally
    normalises them over the valid entries, and takes one Adam step on
    `policy_gradient_loss + entropy_coef * entropy_loss` plus, with the baseline,
    `value_loss(V, G)`, every mean taken over the valid entries. A rollout without a single
    valid entry leaves the state unchanged.
    """
    obs_ndim = len(spec.obs_shape)
    policy = MLP(
        hidden_sizes=tuple(config.hidden_sizes), out_size=spec.num_actions, obs_ndim=obs_ndim
    )
    value = MLP(hidden_sizes=tuple(config.hidden_sizes), out_size=1, obs_ndim=obs_ndim)

    def init(key: Key, hparams: ReinforceHParams, obs: Array) -> ReinforceState:
        k_policy, k_value = jax.random.split(key)
        params = policy.init(k_policy, obs)
        baseline_params = value.init(k_value, obs) if config.baseline else {}
        hparams = as_leaves(hparams)
        opt_state = optim.init((params, baseline_params), hparams.learning_rate)
        return ReinforceState(params, baseline_params, opt_state, hparams, jnp.int32(0))

    def act(state: ReinforceState, obs: Array, key: Key, greedy: bool = False) -> Array:
        return softmax_policy(key, policy.apply(state.params, obs), greedy)

    def loss_fn(all_params, rollout: Transition, returns: Array, valid: Array, hp):
        params, baseline_params = all_params
        obs = rollout.obs.reshape(-1, *rollout.obs.shape[2:])
        g, mask = returns.reshape(-1), valid.reshape(-1)
        advantages = g
        baseline_loss = jnp.float32(0.0)
        if config.baseline:
            v = value.apply(baseline_params, obs)[:, 0]
            baseline_loss = losses.value_loss(v, g, mask)
            advantages = g - v
        advantages = jnp.where(hp.normalize_returns, losses.normalize(advantages, mask), advantages)
        logits = policy.apply(params, obs)
        actions = rollout.action.reshape(-1)
        loss = losses.policy_gradient_loss(logits, actions, advantages, mask)
        loss = loss + hp.entropy_coef * losses.entropy_loss(logits, mask)
        return loss + baseline_loss, (loss, baseline_loss)

    def update(
        state: ReinforceState, rollout: Transition, key: Key
    ) -> tuple[ReinforceState, Metrics]:
        del key
        hp = state.hparams
        returns, valid = jax.vmap(losses.discounted_returns, in_axes=1, out_axes=1)(
            rollout.reward, hp.gamma * rollout.discount, rollout.done
        )
        all_params = (state.params, state.baseline_params)
        grads, (loss, baseline_loss) = jax.grad(loss_fn, has_aux=True)(
            all_params, rollout, returns, valid, hp
        )
        new = optim.step(all_params, state.opt_state, grads)
        learn = jnp.any(valid)
        old = (all_params, state.opt_state)
        (params, baseline_params), opt_state = jax.tree.map(
            lambda n, o: jnp.where(learn, n, o), new, old
        )
        new_state = ReinforceState(
            params, baseline_params, opt_state, hp, state.gradient_steps + learn
        )
        metrics = {
            "loss": loss,
            "baseline_loss": baseline_loss,
            "return_mean": losses.masked_mean(returns, valid),
            "valid_fraction": jnp.mean(valid.astype(jnp.float32)),
        }
        return new_state, metrics

    return Agent(init=init, act=act, update=update)


PRESETS: dict[str, Preset] = {
    # Pacman-v0 (step limit 100, deterministic: one greedy episode tells all). Every 16,000
    # steps the greedy policy plays an episode; a seed stops once it reaches the strawberry
    # untouched (return > 0.5). With entropy 0.3, 32 of 32 seeds in a sweep did so within
    # 272k steps (hence the 480k budget), and 16 of 16 in tests/test_reinforce.py. Without
    # the stopping rule only 12 of 16 seeds ended on a strawberry-reaching policy: seeds
    # that found it drifted back to hiding from the ghosts (return 0). With entropy 0.1 (or
    # 0.2) 11 of 16 (24 of 32) seeds found it at all.
    "pacman": Preset(
        config=ReinforceConfig(hidden_sizes=(32, 32), baseline=True),
        hparams=ReinforceHParams(learning_rate=3e-3, gamma=0.99, entropy_coef=0.3),
        train_config=TrainConfig(
            total_env_steps=480_000,
            num_envs=16,
            rollout_len=100,
            chunk_env_steps=16_000,
            eval_episodes=1,
            stop_return=0.5,
            stop_on="greedy",
        ),
    ),
    # CartPole-v1 (step limit 500): greedy returns 439-500 on 4 of 4 seeds after 160k steps.
    "cartpole": Preset(
        config=ReinforceConfig(hidden_sizes=(32, 32), baseline=True),
        hparams=ReinforceHParams(learning_rate=3e-3, gamma=0.99),
        train_config=TrainConfig(
            total_env_steps=200_000, num_envs=8, rollout_len=500, chunk_env_steps=20_000
        ),
    ),
}


def preset(name: str) -> Preset:
    """The preset called `name`; `ValueError` lists the known names."""
    return pick_preset(PRESETS, name, "REINFORCE")
