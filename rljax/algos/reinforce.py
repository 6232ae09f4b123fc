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

Per episode (`ReinforceConfig.per_episode`, the course's update): one Adam step at the end
of each episode, on that episode's `-sum_t log pi(a_t|s_t) * G_t` with the returns
normalised over the episode. The gradient is accumulated online while the episode runs
(eligibility traces of the score `grad log pi`, `losses.return_moments_step` for the
returns' mean and spread), so no episode is stored and no step is masked; with
`rollout_len=1` the policy changes only between episodes, exactly as in the course.
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
from rljax.nets import MLP, ConvSpec, check_conv, check_kernel_init, conv_layers


@dataclasses.dataclass(frozen=True)
class ReinforceConfig:
    """Static REINFORCE settings: they fix shapes.

    Attributes:
      hidden_sizes: widths of the policy's hidden ReLU layers (softmax over actions); the
        baseline network, if any, has the same widths.
      baseline: learn a state-value network `V(s)` by regression on `G_t` and use
        `G_t - V(s_t)` as the advantage (Sutton & Barto 13.4).
      conv: `(features, kernel, stride)` of each convolution applied to image observations
        `[H, W, C]` before the hidden layers; None: MinAtar's one 3x3 convolution of 16
        channels for images, none for vectors (`rljax.nets.conv_layers`); `()`: flatten.
      kernel_init: weight initializer, one of `rljax.nets.KERNEL_INITS` (Keras' default,
        the course's, is `glorot_uniform`).
      per_episode: one Adam step per completed episode on `-sum_t log pi(a_t|s_t) * G_t`
        (`normalize_returns`: normalised over that episode), the course's update, instead
        of one per rollout; needs `baseline=False` (see the module docstring).
    """

    hidden_sizes: tuple[int, ...] = (32, 32)
    baseline: bool = False
    conv: ConvSpec | None = None
    kernel_init: str = "lecun_normal"
    per_episode: bool = False

    def __post_init__(self) -> None:
        check_conv("ReinforceConfig", self.conv)
        check_sizes("ReinforceConfig", "hidden_sizes", self.hidden_sizes)
        if not isinstance(self.baseline, bool):
            raise ValueError(f"ReinforceConfig.baseline must be a bool, got {self.baseline!r}")
        check_kernel_init("ReinforceConfig", self.kernel_init)
        if not isinstance(self.per_episode, bool):
            raise ValueError(
                f"ReinforceConfig.per_episode must be a bool, got {self.per_episode!r}"
            )
        if self.per_episode and self.baseline:
            raise ValueError("ReinforceConfig.per_episode needs baseline=False")


@hyperparameters
class ReinforceHParams:
    """REINFORCE hyperparameters: traced leaves, so a batch of them is one `vmap`.

    Attributes:
      learning_rate: Adam step size, for the policy and the baseline.
      gamma: discount factor in [0, 1].
      normalize_returns: normalise the advantages to mean 0 and standard deviation 1 over
        the valid entries of each rollout (`per_episode`: over each episode).
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
    episode: Any = ()  # per_episode: EpisodeTraces of the episodes in progress


class EpisodeTraces(NamedTuple):
    """What the per-episode update accumulates for each of the `B` environments while its
    episode runs. With `y_t = grad(-log pi(a_t|s_t))` at the current parameters (leaves
    like the policy's, with a leading `[B]`):"""

    score: Any  # sum_t gamma^(K - t) y_t
    weighted: Any  # sum_k r_k * score_k = sum_t G_t y_t
    score_sum: Any  # sum_t y_t
    entropy_grad: Any  # sum_t grad(-H(pi(.|s_t)))
    moments: losses.ReturnMoments  # leaves [B]


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
    conv = conv_layers(config.conv, obs_ndim)
    policy = MLP(
        hidden_sizes=tuple(config.hidden_sizes),
        out_size=spec.num_actions,
        obs_ndim=obs_ndim,
        kernel_init=config.kernel_init,
        conv=conv,
    )
    value = MLP(
        hidden_sizes=tuple(config.hidden_sizes),
        out_size=1,
        obs_ndim=obs_ndim,
        kernel_init=config.kernel_init,
        conv=conv,
    )

    def init(key: Key, hparams: ReinforceHParams, obs: Array) -> ReinforceState:
        k_policy, k_value = jax.random.split(key)
        params = policy.init(k_policy, obs)
        baseline_params = value.init(k_value, obs) if config.baseline else {}
        hparams = as_leaves(hparams)
        opt_state = optim.init((params, baseline_params), hparams.learning_rate)
        episode = _empty_traces(params, obs.shape[0]) if config.per_episode else ()
        steps = jnp.int32(0)
        return ReinforceState(params, baseline_params, opt_state, hparams, steps, episode)

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

    if config.per_episode:
        update = _per_episode_update(policy)
    return Agent(init=init, act=act, update=update)


def _empty_traces(params: Any, B: int) -> EpisodeTraces:
    zeros = jax.tree.map(lambda p: jnp.zeros((B, *p.shape), p.dtype), params)
    moments = jax.tree.map(lambda z: jnp.zeros((B,), z.dtype), losses.ReturnMoments.zeros())
    return EpisodeTraces(zeros, zeros, zeros, zeros, moments)


def _per_episode_update(policy: MLP):
    """The course's update (`ReinforceConfig.per_episode`): per step and environment, add
    the step's score and reward to its `EpisodeTraces`; where an episode ends, its gradient
    of `-sum_t log pi(a_t|s_t) * G_hat_t + entropy_coef * sum_t -H_t`, with
    `sum_t G_hat_t y_t = (weighted - mean(G) * score_sum) / (std(G) + 1e-8)` (or `weighted`
    unnormalised), and one Adam step on the sum over the environments that ended."""
    ones = jnp.ones((1,), jnp.float32)

    def step_grads(params, obs, action):  # one environment, one step
        def pg_loss(p):
            return losses.policy_gradient_loss(policy.apply(p, obs[None]), action[None], ones, ones)

        def entropy_loss(p):
            return losses.entropy_loss(policy.apply(p, obs[None]), ones)

        return jax.grad(pg_loss)(params), jax.grad(entropy_loss)(params)

    def update(state: ReinforceState, rollout: Transition, key: Key):
        del key
        hp = state.hparams

        def step(carry, tr: Transition):
            params, opt_state, traces, steps = carry
            y, h = jax.vmap(step_grads, in_axes=(None, 0, 0))(params, tr.obs, tr.action)
            per_env = lambda x, leaf: x.reshape(x.shape + (1,) * (leaf.ndim - 1))  # noqa: E731
            score = jax.tree.map(lambda e, g: hp.gamma * e + g, traces.score, y)
            weighted = jax.tree.map(
                lambda w, e: w + per_env(tr.reward, e) * e, traces.weighted, score
            )
            score_sum = jax.tree.map(jnp.add, traces.score_sum, y)
            entropy_grad = jax.tree.map(jnp.add, traces.entropy_grad, h)
            moments = jax.vmap(losses.return_moments_step, in_axes=(0, 0, None))(
                traces.moments, tr.reward, hp.gamma
            )
            mean, std = jax.vmap(losses.return_mean_std)(moments)

            def episode_grad(w, z, ent):  # [B, ...] -> summed over the episodes that ended
                normalised = (w - per_env(mean, w) * z) / per_env(std + 1e-8, w)
                g = jnp.where(hp.normalize_returns, normalised, w) + hp.entropy_coef * ent
                return jnp.sum(per_env(tr.done, g) * g, axis=0)

            grads = jax.tree.map(episode_grad, weighted, score_sum, entropy_grad)
            new = optim.step((params, {}), opt_state, (grads, {}))
            learn = jnp.any(tr.done)
            (params, _), opt_state = jax.tree.map(
                lambda n, o: jnp.where(learn, n, o), new, ((params, {}), opt_state)
            )
            traces = EpisodeTraces(score, weighted, score_sum, entropy_grad, moments)
            traces = jax.tree.map(lambda x: jnp.where(per_env(tr.done, x), 0, x), traces)
            return (params, opt_state, traces, steps + learn), jnp.sum(tr.done)

        carry = (state.params, state.opt_state, state.episode, state.gradient_steps)
        (params, opt_state, traces, steps), ended = jax.lax.scan(step, carry, rollout)
        new_state = ReinforceState(params, {}, opt_state, hp, steps, traces)
        return new_state, {"episodes_ended": jnp.sum(ended).astype(jnp.float32)}

    return update


PRESETS: dict[str, Preset] = {
    # Tuned for Pacman-v0 (deterministic: one greedy episode, cut after 100 steps, tells
    # all). Every 16,000 steps the greedy policy plays an episode; a seed stops once it
    # reaches the strawberry untouched (return > 0.5). Tuned on rljax's former layout
    # (ghosts at (1,1), (2,2), (3,3), moving after Pacman, a 100-step limit): with entropy
    # 0.3, 32 of 32 seeds in a sweep did so within 272k steps (hence the 480k budget);
    # without the stopping rule only 12 of 16 ended on a strawberry-reaching policy. On the
    # course's world: 8 of 8 seeds stopped within 32k steps, and 16 of 16 in
    # tests/test_reinforce.py. On PacmanReinforce-v0 use `--set stop_return=0.05` (untouched
    # there is 1 - 0.1 per step): 8 of 8 seeds stopped within 160k steps.
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
            max_eval_steps=100,
        ),
    ),
    # The course's script (`1-grid-world/7-reinforce/reinforce_agent.py`) on its world,
    # PacmanReinforce-v0 (-0.1 per step): 24-24 ReLU, Glorot-uniform (Keras' default),
    # softmax, Adam 1e-3, gamma 0.99, one step per episode on -sum log pi * G with the
    # returns normalised over the episode; no baseline, no entropy bonus; one environment.
    # The course's 2,500 episodes take 27k-39k steps where it learns (docs/course.md).
    "course": Preset(
        config=ReinforceConfig(
            hidden_sizes=(24, 24), kernel_init="glorot_uniform", per_episode=True
        ),
        hparams=ReinforceHParams(learning_rate=1e-3, gamma=0.99, normalize_returns=True),
        train_config=TrainConfig(
            total_env_steps=40_000, chunk_env_steps=5_000, eval_episodes=1, max_eval_steps=100
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
