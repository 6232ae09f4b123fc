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

import jax
import jax.numpy as jnp

from rljax import losses, optim
from rljax.core.config import Preset, TrainConfig, pick_preset
from rljax.core.keys import split_to_scan
from rljax.core.types import Agent, Array, EnvSpec, Key, Metrics, Transition
from rljax.core.validation import as_leaves, check_sizes, check_values, hyperparameters
from rljax.exploration import epsilon_at, epsilon_greedy, epsilon_greedy_policy
from rljax.nets import ConvSpec, check_conv, check_kernel_init, q_network
from rljax.pending import PendingRollout


@dataclasses.dataclass(frozen=True)
class DeepSARSAConfig:
    """Static Deep SARSA settings.

    Attributes:
      hidden_sizes: widths of the Q-network's hidden ReLU layers.
      kernel_init: weight initializer, one of `rljax.nets.KERNEL_INITS`.
      conv: `(features, kernel, stride)` of each convolution applied to image observations
        `[H, W, C]` before the hidden layers; None: MinAtar's one 3x3 convolution of 16
        channels for images, none for vectors (`rljax.nets.conv_layers`); `()`: flatten.
      sampled_next_action: the course's target: `a'` is drawn afresh from the
        epsilon-greedy policy at `s'`, independently of the action then taken, and each
        transition is learned from at once. Default False: `a'` is the next action taken
        (textbook SARSA; the transition waits for it).
    """

    hidden_sizes: tuple[int, ...] = (30, 30)
    kernel_init: str = "he_uniform"
    conv: ConvSpec | None = None
    sampled_next_action: bool = False

    def __post_init__(self) -> None:
        check_conv("DeepSARSAConfig", self.conv)
        if not isinstance(self.sampled_next_action, bool):
            raise ValueError(
                "DeepSARSAConfig.sampled_next_action must be a bool, "
                f"got {self.sampled_next_action!r}"
            )
        check_sizes("DeepSARSAConfig", "hidden_sizes", self.hidden_sizes)
        check_kernel_init("DeepSARSAConfig", self.kernel_init)


@hyperparameters
class DeepSARSAHParams:
    """Traced Deep SARSA hyperparameters (the course's values by default).

    Attributes:
      learning_rate: Adam step size.
      gamma: discount factor in [0, 1].
      epsilon: exploration rate at the start.
      epsilon_end: the exploration rate never decays below this.
      epsilon_decay: per gradient step, `epsilon_t = max(epsilon_end, epsilon *
        epsilon_decay ** gradient_steps)`.
    """

    learning_rate: float = 1e-3
    gamma: float = 0.99
    epsilon: float = 1.0
    epsilon_end: float = 0.01
    epsilon_decay: float = 0.9999

    def validate(self) -> None:
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
    pending: PendingRollout  # the last transition of each environment, awaiting its next action
    gradient_steps: Array  # shape=(), int32


def make_deep_sarsa(config: DeepSARSAConfig, spec: EnvSpec) -> Agent:
    """Deep SARSA as `Agent(init, act, update)`.

    `update` receives a rollout `[T, B]`. Each transition is learned from once, in time
    order, by one Adam step on `mean_B(delta^2)` with `delta = losses.sarsa(...)`. Its next
    action is the one taken at the following step; the last transition of a rollout waits
    in the state until the next rollout supplies it (`PendingRollout`). At a time-limit
    truncation no next action is taken, so one is drawn from the current epsilon-greedy
    policy at the final observation; after a termination none is needed. With
    `config.sampled_next_action` (the course's script) nothing waits: every `a'` is drawn
    from the current epsilon-greedy policy at `s'` when the transition is learned from.
    """
    network = q_network(config.hidden_sizes, config.kernel_init, spec, config.conv)

    def init(key: Key, hparams: DeepSARSAHParams, obs: Array) -> DeepSARSAState:
        params = network.init(key, obs)
        hparams = as_leaves(hparams)
        return DeepSARSAState(
            params=params,
            opt_state=optim.init(params, hparams.learning_rate),
            hparams=hparams,
            pending=PendingRollout.empty(obs),
            gradient_steps=jnp.int32(0),
        )

    def act(state: DeepSARSAState, obs: Array, key: Key, greedy: bool = False) -> Array:
        epsilon = epsilon_at(state.hparams, state.gradient_steps)
        return epsilon_greedy_policy(key, network.apply(state.params, obs), epsilon, greedy)

    def update(state: DeepSARSAState, rollout: Transition, key: Key):
        hp = state.hparams
        if config.sampled_next_action:  # the course's: learn at once, a' drawn afresh
            now, next_action, pending = rollout, rollout.action, state.pending
            valid = jnp.ones(rollout.done.shape[0], bool)
        else:
            now, next_action, valid, pending = state.pending.shift(rollout)
        keys, as_key = split_to_scan(key, valid.shape[0])

        def step(carry, inp):
            params, opt_state, steps = carry
            tr, a_next, ok, k = inp
            q_next = network.apply(params, tr.next_obs)
            drawn = epsilon_greedy(as_key(k), q_next, epsilon_at(hp, steps))
            a_next = jnp.where(tr.done | config.sampled_next_action, drawn, a_next)

            def loss_fn(p):
                td = jax.vmap(losses.sarsa)(
                    network.apply(p, tr.obs), tr.action, tr.reward, hp.gamma * tr.discount,
                    q_next, a_next,
                )  # fmt: skip
                return jnp.mean(jnp.square(td))

            loss, grads = jax.value_and_grad(loss_fn)(params)
            new = optim.step(params, opt_state, grads)
            params, opt_state = jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, carry[:2])
            return (params, opt_state, steps + ok), loss

        (params, opt_state, steps), step_losses = jax.lax.scan(
            step, (state.params, state.opt_state, state.gradient_steps),
            (now, next_action, valid, keys),
        )  # fmt: skip
        new_state = DeepSARSAState(params, opt_state, hp, pending, steps)
        loss = losses.masked_mean(step_losses, valid)
        metrics: Metrics = {"loss": loss, "epsilon": epsilon_at(hp, steps)}
        return new_state, metrics

    return Agent(init=init, act=act, update=update)


PRESETS: dict[str, Preset] = {
    # Pacman-v0 with the course's numbers (30-30 ReLU, Adam 1e-3, gamma 0.99, epsilon 1.0
    # decaying by 0.9999 per step to 0.01): one environment, one gradient step per step;
    # textbook SARSA (the target's next action is the one taken), He-uniform init. Greedy
    # episodes are cut after 100 steps.
    "default": Preset(
        DeepSARSAConfig(),
        DeepSARSAHParams(),
        TrainConfig(
            total_env_steps=50_000, chunk_env_steps=1_000, eval_episodes=1, max_eval_steps=100
        ),
    ),
    # The course's script (`1-grid-world/6-deep-sarsa/deep_sarsa_agent.py`): the same
    # network and numbers, Keras' default Glorot-uniform init, and the target's next action
    # drawn independently of the one then taken. Its 1,000 episodes take about 22k steps.
    "course": Preset(
        DeepSARSAConfig(kernel_init="glorot_uniform", sampled_next_action=True),
        DeepSARSAHParams(),
        TrainConfig(
            total_env_steps=22_000, chunk_env_steps=1_000, eval_episodes=1, max_eval_steps=100
        ),
    ),
}


def preset(name: str) -> Preset:
    """The preset called `name`; `ValueError` lists the known names."""
    return pick_preset(PRESETS, name, "Deep SARSA")
