"""DQN: a Q-network trained from a replay memory against a target network.

Mnih et al. (2015), "Human-level control through deep reinforcement learning"; Double DQN
from van Hasselt et al. (2016); Sutton & Barto (2018), section 6.5 (Q-learning).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from rljax import losses, optim
from rljax.core.config import Preset, TrainConfig, pick_preset
from rljax.core.keys import split_to_scan
from rljax.core.types import Agent, Array, EnvSpec, Key, Metrics, Transition
from rljax.core.validation import (
    as_leaves,
    check_bool,
    check_counts,
    check_sizes,
    check_values,
    hyperparameters,
)
from rljax.exploration import epsilon_at, epsilon_greedy_policy
from rljax.nets import ConvSpec, check_conv, check_kernel_init, q_network
from rljax.replay import ReplayBuffer, replay_add, replay_init, replay_sample


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """Static DQN settings: they fix shapes and loop lengths.

    Attributes:
      hidden_sizes: widths of the Q-network's hidden ReLU layers.
      kernel_init: weight initializer, one of `rljax.nets.KERNEL_INITS`.
      buffer_size: replay memory capacity (transitions).
      batch_size: transitions per gradient step.
      gradient_steps: gradient steps per `update` call (per rollout of `T * B` steps).
      conv: `(features, kernel, stride)` of each convolution applied to image observations
        `[H, W, C]` before the hidden layers; None: MinAtar's one 3x3 convolution of 16
        channels for images, none for vectors (`rljax.nets.conv_layers`); `()`: flatten.
      double_dqn: Double DQN's target (the online network's argmax, valued by the target
        network) instead of DQN's (the target network's max). Static because it changes the
        program: only Double DQN runs the online network on the next observations, three
        more matrix products per gradient step (10-20% of a chunk of the course's CartPole
        DQN at 64 runs, 11% of Breakout's at 8). Swept, each value is a batch of its own.
    """

    hidden_sizes: tuple[int, ...] = (64, 64)
    kernel_init: str = "lecun_normal"
    buffer_size: int = 10_000
    batch_size: int = 64
    gradient_steps: int = 1
    conv: ConvSpec | None = None
    double_dqn: bool = True

    def __post_init__(self) -> None:
        check_conv("DQNConfig", self.conv)
        check_bool("DQNConfig", "double_dqn", self.double_dqn)
        check_counts("DQNConfig", self, "buffer_size", "batch_size", "gradient_steps")
        if self.batch_size > self.buffer_size:
            raise ValueError(
                f"DQNConfig.batch_size={self.batch_size} is larger than "
                f"DQNConfig.buffer_size={self.buffer_size}"
            )
        check_sizes("DQNConfig", "hidden_sizes", self.hidden_sizes)
        check_kernel_init("DQNConfig", self.kernel_init)


@hyperparameters
class DQNHParams:
    """DQN hyperparameters: traced leaves, so a batch of them is one `vmap`.

    The defaults are generic DQN settings (Huber loss, periodic hard target copies; Double
    DQN is `DQNConfig.double_dqn`); `preset("default")` holds the settings measured to
    solve CartPole-v1.

    Attributes:
      learning_rate: Adam step size (at the start).
      learning_rate_end: step size reached after `learning_rate_decay_steps` gradient steps,
        linearly; it stays there afterwards.
      learning_rate_decay_steps: length of the linear decay (0: constant `learning_rate`).
      gamma: discount factor in [0, 1].
      epsilon: exploration rate at the start.
      epsilon_end: the exploration rate never decays below this.
      epsilon_decay: per gradient step, `epsilon_t = max(epsilon_end, epsilon *
        epsilon_decay ** gradient_steps)`.
      learning_starts: gradient steps begin once the memory holds this many transitions.
      target_update_period: copy every this many `update` calls (0: never by period).
      target_update_on_done: also copy whenever an episode ends (the course's rule).
      tau: the copy is `target <- tau * online + (1 - tau) * target` (1.0: hard copy).
      huber: the Huber loss instead of the squared TD error.
      max_grad_norm: clip gradients to this global norm (inf: no clipping).
      clip_rewards: store rewards clipped to [-1, 1] (the course's Atari rule; a
        `terminal_reward` still replaces the reward of terminating transitions).
      terminal_reward: reward stored for terminating transitions instead of the
        environment's (the course's -100 when the pole falls); None keeps the environment's.
    """

    learning_rate: float = 1e-3
    learning_rate_end: float = 1e-3
    learning_rate_decay_steps: float = 0.0
    gamma: float = 0.99
    epsilon: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay: float = 0.9995
    learning_starts: float = 1_000.0
    target_update_period: float = 500.0
    target_update_on_done: bool = False
    tau: float = 1.0
    huber: bool = True
    max_grad_norm: float = 10.0
    clip_rewards: bool = False
    terminal_reward: float | None = None

    def validate(self) -> None:
        check = lambda name, **kw: check_values("DQNHParams", name, getattr(self, name), **kw)  # noqa: E731
        check("learning_rate", low=0.0, low_open=True)
        check("learning_rate_end", low=0.0)
        check("learning_rate_decay_steps", low=0.0, integer=True)
        check("gamma", low=0.0, high=1.0)
        check("epsilon", low=0.0, high=1.0)
        check("epsilon_end", low=0.0, high=1.0)
        check("epsilon_decay", low=0.0, high=1.0)
        check("learning_starts", low=0.0, integer=True)
        check("target_update_period", low=0.0, integer=True)
        check("tau", low=0.0, high=1.0, low_open=True)
        check("max_grad_norm", low=0.0, low_open=True, high=math.inf)
        if self.terminal_reward is not None:
            check("terminal_reward")
        for name in ("target_update_on_done", "huber", "clip_rewards"):
            check_bool("DQNHParams", name, getattr(self, name))


class DQNState(NamedTuple):
    params: Any  # online Q-network
    target_params: Any
    opt_state: Any  # clipping + Adam, the learning rate in the state
    buffer: ReplayBuffer  # items: Transition of one step
    hparams: DQNHParams
    update_calls: Array  # shape=(), int32, calls of `update`
    gradient_steps: Array  # shape=(), int32, gradient steps applied


def learning_rate_at(hparams: DQNHParams, gradient_steps: Array) -> Array:
    """Linear from `learning_rate` to `learning_rate_end` over `learning_rate_decay_steps`
    gradient steps, constant afterwards (and throughout when the length is 0)."""
    length = hparams.learning_rate_decay_steps
    frac = jnp.where(
        length > 0, jnp.minimum(gradient_steps.astype(jnp.float32) / jnp.maximum(length, 1), 1), 0
    )
    return hparams.learning_rate + frac * (hparams.learning_rate_end - hparams.learning_rate)


def _store(buffer: ReplayBuffer, rollout: Transition, hp: DQNHParams) -> ReplayBuffer:
    """Add a rollout `[T, B]` to the memory, its rewards clipped to [-1, 1] with
    `clip_rewards`, and the reward of terminating transitions rewritten to
    `terminal_reward` unless it is None."""
    items = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), rollout)
    clipped = jnp.where(hp.clip_rewards, jnp.clip(items.reward, -1.0, 1.0), items.reward)
    items = items._replace(reward=clipped)
    if hp.terminal_reward is not None:  # static: None has no leaf
        reward = jnp.where(items.discount == 0.0, hp.terminal_reward, items.reward)
        items = items._replace(reward=reward)
    return replay_add(buffer, items)


def _target_update(
    params: Any, target_params: Any, update_calls: Array, done: Array, hp: DQNHParams
) -> Any:
    """`target <- tau * online + (1 - tau) * target` (`optax.incremental_update`) when
    `update_calls` is a multiple of a nonzero `target_update_period`, or, with
    `target_update_on_done`, when an episode ended in the rollout (`done [T, B]`)."""
    period = hp.target_update_period.astype(jnp.int32)
    by_period = (period > 0) & (update_calls % jnp.maximum(period, 1) == 0)
    copy = by_period | (hp.target_update_on_done & jnp.any(done))
    moved = optax.incremental_update(params, target_params, hp.tau)
    return jax.tree.map(lambda m, t: jnp.where(copy, m, t), moved, target_params)


def make_dqn(config: DQNConfig, spec: EnvSpec) -> Agent:
    """DQN as `Agent(init, act, update)`.

    `update` stores the rollout (`[T, B]` transitions) in the replay memory, then takes
    `config.gradient_steps` Adam steps on `mean(td_loss(delta))` over batches sampled
    uniformly from the filled slots, with `delta` the Q-learning (or Double Q-learning)
    error against the target network; gradient steps are masked until the memory holds
    `learning_starts` transitions. The target network then moves towards the online one
    (`optax.incremental_update` at rate `tau`) when its period elapses or an episode ended.
    """
    network = q_network(config.hidden_sizes, config.kernel_init, spec, config.conv)

    def init(key: Key, hparams: DQNHParams, obs: Array) -> DQNState:
        params = network.init(key, obs)
        one = jax.tree.map(lambda x: x[0], obs)
        item = Transition(one, jnp.int32(0), jnp.float32(0), jnp.float32(0), one, jnp.bool_(0))
        hparams = as_leaves(hparams)
        return DQNState(
            params=params,
            target_params=params,
            opt_state=optim.init(params, hparams.learning_rate),
            buffer=replay_init(item, config.buffer_size),
            hparams=hparams,
            update_calls=jnp.int32(0),
            gradient_steps=jnp.int32(0),
        )

    def act(state: DQNState, obs: Array, key: Key, greedy: bool = False) -> Array:
        epsilon = epsilon_at(state.hparams, state.gradient_steps)
        return epsilon_greedy_policy(key, network.apply(state.params, obs), epsilon, greedy)

    def loss_fn(params, target_params, batch: Transition, hp: DQNHParams):
        q_tm1 = network.apply(params, batch.obs)
        q_t_value = network.apply(target_params, batch.next_obs)
        selector = network.apply(params, batch.next_obs) if config.double_dqn else q_t_value
        td = jax.vmap(losses.double_q_learning)(
            q_tm1, batch.action, batch.reward, hp.gamma * batch.discount, q_t_value, selector
        )
        q_a = jnp.take_along_axis(q_tm1, batch.action[:, None], axis=-1)[:, 0]
        return jnp.mean(losses.td_loss(td, hp.huber)), jnp.mean(q_a)

    def update(state: DQNState, rollout: Transition, key: Key) -> tuple[DQNState, Metrics]:
        hp = state.hparams
        buffer = _store(state.buffer, rollout, hp)
        learn = buffer.size >= hp.learning_starts

        keys, as_key = split_to_scan(key, config.gradient_steps)

        def gradient_step(carry, k):
            params, opt_state, steps = carry
            k = as_key(k)
            opt_state = optim.set_learning_rate(opt_state, learning_rate_at(hp, steps))
            batch = replay_sample(buffer, k, config.batch_size)
            (loss, q_mean), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, state.target_params, batch, hp
            )
            new = optim.step(params, opt_state, grads, hp.max_grad_norm)
            params, opt_state = jax.tree.map(lambda n, o: jnp.where(learn, n, o), new, carry[:2])
            return (params, opt_state, steps + learn), (loss, q_mean)

        (params, opt_state, steps), (loss, q_mean) = jax.lax.scan(
            gradient_step,
            (state.params, state.opt_state, state.gradient_steps),
            keys,
        )
        calls = state.update_calls + 1
        target_params = _target_update(params, state.target_params, calls, rollout.done, hp)
        new_state = DQNState(params, target_params, opt_state, buffer, hp, calls, steps)
        metrics = {
            "loss": jnp.where(learn, jnp.mean(loss), 0.0),  # 0 until learning starts
            "q_mean": jnp.mean(q_mean),
            "epsilon": epsilon_at(hp, steps),
            "learning_rate": learning_rate_at(hp, steps),
        }
        return new_state, metrics

    return Agent(init=init, act=act, update=update)


_COURSE_CONFIG = DQNConfig(
    hidden_sizes=(24, 24),
    kernel_init="he_uniform",
    buffer_size=2_000,
    batch_size=64,
    double_dqn=False,
)
_COURSE_HPARAMS = DQNHParams(
    learning_rate=1e-3,
    gamma=0.99,
    epsilon=1.0,
    epsilon_end=0.01,
    epsilon_decay=0.999,
    learning_starts=1_000.0,
    target_update_period=0.0,
    target_update_on_done=True,
    tau=1.0,
    huber=False,
    max_grad_norm=math.inf,
    terminal_reward=-100.0,
)

PRESETS: dict[str, Preset] = {
    # The course script, for CartPole-v1: Keras DQN, 24-24 ReLU He-uniform, MSE, Adam 1e-3,
    # epsilon 1.0 * 0.999 per training step down to 0.01, batch 64, memory 2,000, learning
    # from 1,000 samples, one gradient step per environment step, target copied at the end
    # of each episode, -100 when the pole falls, stop once the last 10 scores average > 490.
    # (Also under its former name, `lecture`.)
    "course": Preset(
        config=_COURSE_CONFIG,
        hparams=_COURSE_HPARAMS,
        train_config=TrainConfig(
            total_env_steps=150_000, chunk_env_steps=250, stop_return=490.0, stop_window=10
        ),
    ),
    # CartPole-v1, solved on every seed we measured (benchmarks/dqn_cartpole.py): the course
    # recipe with a stricter stopping rule, a sustained mean over the last 20 episodes.
    # Of the variants we swept, the course's squared loss with the -100 failure reward learned
    # fastest; the Huber loss with that reward never learned (its gradient ignores the -100).
    "default": Preset(
        config=_COURSE_CONFIG,
        hparams=_COURSE_HPARAMS,
        train_config=TrainConfig(
            total_env_steps=100_000, chunk_env_steps=250, stop_return=490.0, stop_window=20
        ),
    ),
}
PRESETS["lecture"] = PRESETS["course"]  # the course preset's former name


# Breakout-MinAtar (10x10x4 binary planes, 3 actions), adapted from the course's Atari DQN
# (`3-atari/1-breakout/breakout_dqn.py`: 84x84x4 grey frames, convolutions 32 8x8/4,
# 64 4x4/2, 64 3x3/1, dense 512). Kept: the Huber loss, plain DQN's target (no Double DQN),
# gamma 0.99, rewards clipped to [-1, 1], epsilon from 1.0 down to 0.1, a hard target copy
# on a fixed period, learning only once the memory holds enough transitions. Changed, for
# frames 70 times smaller and a CPU budget: MinAtar's network (one 3x3 convolution of 16
# channels, dense 128); Adam 1e-3 (course: RMSprop 2.5e-4); memory 100k (400k), learning
# from 5k transitions (50k), target copied every 2,000 env steps (10,000), epsilon decayed
# exponentially to 0.1 in about 100k env steps (linearly over 1M); 8 environments per seed,
# one gradient step on a batch of 64 per 8 env steps (course: 32 at every step), the
# gradient clipped to norm 10. Measured in benchmarks/breakout.py (README "Pixels").
PRESETS["breakout"] = Preset(
    config=DQNConfig(
        hidden_sizes=(128,),
        buffer_size=100_000,
        batch_size=64,
        conv=((16, 3, 1),),
        double_dqn=False,
    ),
    hparams=DQNHParams(
        learning_rate=1e-3,
        learning_rate_end=1e-3,
        gamma=0.99,
        epsilon=1.0,
        epsilon_end=0.1,
        epsilon_decay=0.99982,
        learning_starts=5_000.0,
        target_update_period=250.0,
        huber=True,
        max_grad_norm=10.0,
        clip_rewards=True,
    ),
    train_config=TrainConfig(total_env_steps=160_000, num_envs=8, chunk_env_steps=3_200),
)


def preset(name: str) -> Preset:
    """The preset called `name`; `ValueError` lists the known names."""
    return pick_preset(PRESETS, name, "DQN")
