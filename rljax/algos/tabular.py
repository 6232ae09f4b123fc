"""Tabular prediction and control: Monte-Carlo and TD(0) prediction, Monte-Carlo control
with state values (the course's), SARSA, Expected SARSA, Q-learning. Sutton & Barto (2018),
chapters 5 and 6.

Each is an `Agent(init, act, update)` for environments whose observation is a state index
`[]` (int). The driver hands `update` a rollout `[T, B]`; transitions are applied in time
order (a `lax.scan` over `T`), the `B` environments of one time step together (their
increments add up when they touch the same entry). With `B = 1` this is the textbook
algorithm, step by step.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rljax import losses
from rljax.algos.dp import check_policy
from rljax.core.config import Preset, TrainConfig, pick_preset
from rljax.core.keys import split_to_scan
from rljax.core.types import Agent, Array, Key, Transition
from rljax.core.validation import (
    as_leaves,
    check_bool,
    check_counts,
    check_values,
    hyperparameters,
)
from rljax.exploration import epsilon_at, epsilon_greedy_probs, greedy_action, sample
from rljax.pending import PendingRollout


@dataclasses.dataclass(frozen=True)
class TabularConfig:
    """Static sizes of the tables.

    Attributes:
      num_states: number of states `S` (observations are indices in `[0, S)`).
      num_actions: number of actions `A`.
    """

    num_states: int
    num_actions: int

    @classmethod
    def for_env(cls, env: Any, env_params: Any) -> TabularConfig:
        """Sizes from a gymnax environment with `Discrete` observation and action spaces."""
        obs_space, act_space = env.observation_space(env_params), env.action_space(env_params)
        if not hasattr(obs_space, "n") or not hasattr(act_space, "n"):
            raise ValueError(
                f"{env.name}: tabular agents need Discrete observation and action spaces, got "
                f"{type(obs_space).__name__} and {type(act_space).__name__}"
            )
        return cls(num_states=int(obs_space.n), num_actions=int(act_space.n))

    def __post_init__(self) -> None:
        check_counts("TabularConfig", self, "num_states", "num_actions")


@hyperparameters
class TabularHParams:
    """Numeric hyperparameters (traced; a batch of them is one `vmap`).

    Attributes:
      learning_rate: the step size alpha in `V(s) <- V(s) + alpha * (target - V(s))`.
      gamma: discount factor in [0, 1].
      epsilon: exploration rate of the control agents at the start.
      epsilon_end: the exploration rate never decays below this.
      epsilon_decay: per `update` call, `epsilon_t = max(epsilon_end, epsilon *
        epsilon_decay ** update_calls)` (1: constant).
      init_value: the tables' initial value.
    """

    learning_rate: float = 0.1
    gamma: float = 0.9
    epsilon: float = 0.1
    epsilon_end: float = 0.0
    epsilon_decay: float = 1.0
    init_value: float = 0.0

    def validate(self) -> None:
        check = lambda name, **kw: check_values("TabularHParams", name, getattr(self, name), **kw)  # noqa: E731
        check("learning_rate", low=0.0, high=1.0, low_open=True)
        check("gamma", low=0.0, high=1.0)
        check("epsilon", low=0.0, high=1.0)
        check("epsilon_end", low=0.0, high=1.0)
        check("epsilon_decay", low=0.0, high=1.0)
        check("init_value", low=-math.inf, high=math.inf, low_open=True, high_open=True)


def _scatter_add(table: Array, index: Any, values: Array) -> Array:
    return table.at[index].add(values)


# --- Prediction --------------------------------------------------------------------------


class PredictionState(NamedTuple):
    params: Array  # V [S]
    policy: Array  # [S, A], the policy evaluated (also the behaviour)
    hparams: TabularHParams
    update_calls: Array  # shape=(), int32


def _prediction_policy(config: TabularConfig, policy: Array | None) -> Array:
    S, A = config.num_states, config.num_actions
    policy = jnp.full((S, A), 1.0 / A) if policy is None else policy
    check_policy(policy, S, A)
    return jnp.asarray(policy, jnp.float32)


def _policy_act(state: PredictionState, obs: Array, key: Key, greedy: bool = False) -> Array:
    probs = state.policy[obs]
    return greedy_action(probs) if greedy else sample(key, probs)


def make_td_prediction(config: TabularConfig, policy: Array | None = None) -> Agent:
    """TD(0) prediction of `policy` (`[S, A]`, also the behaviour; uniform random by
    default). Per transition, in time order:
    `V(s) <- V(s) + alpha * (r + gamma * discount * V(s') - V(s))` (S&B section 6.1).
    """
    S = config.num_states
    policy = _prediction_policy(config, policy)

    def init(key: Key, hparams: TabularHParams, obs: Array) -> PredictionState:
        del key, obs
        hp = as_leaves(hparams)
        return PredictionState(jnp.full((S,), hp.init_value), policy, hp, jnp.int32(0))

    def update(state: PredictionState, rollout: Transition, key: Key):
        del key
        hp = state.hparams

        def step(v, tr: Transition):
            td = jax.vmap(losses.td_learning)(
                v[tr.obs], tr.reward, hp.gamma * tr.discount, v[tr.next_obs]
            )
            return _scatter_add(v, tr.obs, hp.learning_rate * td), jnp.mean(jnp.abs(td))

        v, td = jax.lax.scan(step, state.params, rollout)
        state = state._replace(params=v, update_calls=state.update_calls + 1)
        return state, {"td_abs": jnp.mean(td)}

    return Agent(init=init, act=_policy_act, update=update)


class MCState(NamedTuple):
    params: Array  # V [S]
    policy: Array  # [S, A]
    hparams: TabularHParams
    trace: Array  # [B, S], sum over counted visits t <= k of gamma^(k - t)
    visits: Array  # [B, S], visits counted in the episode in progress
    returns: Array  # [B, S], sum over counted visits of the return so far
    update_calls: Array  # shape=(), int32


def make_mc_prediction(
    config: TabularConfig, policy: Array | None = None, first_visit: bool = True
) -> Agent:
    """Monte-Carlo prediction of `policy` (`[S, A]`, uniform by default), first-visit or
    every-visit (S&B section 5.1), with a constant step size:
    `V(s) <- V(s) + alpha * (G_t - V(s))` for each counted visit `t` of `s`, applied when the
    episode ends.

    Returns are accumulated online instead of storing episodes: a per-state trace
    `e(s) = sum_{counted visits t <= k} gamma^(k - t)` decays by gamma each step, and each
    reward adds `r_{k+1} * e(s)` to the state's summed return, so the episode's complete
    returns are known at its last step without a backward pass. An episode cut by the time
    limit is completed with the bootstrapped value `gamma * V(s_T)` of its final
    observation (a truncated return is not a Monte-Carlo one).
    """
    S = config.num_states
    policy = _prediction_policy(config, policy)

    def init(key: Key, hparams: TabularHParams, obs: Array) -> MCState:
        del key
        hp = as_leaves(hparams)
        zeros = jnp.zeros((obs.shape[0], S), jnp.float32)
        return MCState(jnp.full((S,), hp.init_value), policy, hp, zeros, zeros, zeros, jnp.int32(0))

    def update(state: MCState, rollout: Transition, key: Key):
        del key
        hp = state.hparams

        def step(carry, tr: Transition):
            v, trace, visits, returns = carry
            visit = jax.nn.one_hot(tr.obs, S)  # [B, S]
            counted = visit * (visits == 0) if first_visit else visit
            trace = trace + counted
            visits = visits + counted
            returns = returns + tr.reward[:, None] * trace
            truncated = tr.done & (tr.discount > 0)
            boot = jnp.where(truncated, hp.gamma * v[tr.next_obs], 0.0)
            returns = returns + boot[:, None] * trace
            # Episode end: V(s) += alpha * sum over counted visits of (G_t - V(s)).
            end = tr.done[:, None].astype(jnp.float32)
            v = v + hp.learning_rate * jnp.sum(end * (returns - visits * v[None]), axis=0)
            keep = 1.0 - end
            return (v, hp.gamma * trace * keep, visits * keep, returns * keep), None

        carry = (state.params, state.trace, state.visits, state.returns)
        (v, trace, visits, returns), _ = jax.lax.scan(step, carry, rollout)
        episodes = jnp.sum(rollout.done)
        state = MCState(v, state.policy, hp, trace, visits, returns, state.update_calls + 1)
        return state, {"episodes_ended": episodes.astype(jnp.float32)}

    return Agent(init=init, act=_policy_act, update=update)


# --- Control -----------------------------------------------------------------------------


class ControlState(NamedTuple):
    params: Array  # Q [S, A]
    hparams: TabularHParams
    pending: PendingRollout  # SARSA only: the last transitions, awaiting their next action
    update_calls: Array  # shape=(), int32


def _control_act(state: ControlState, obs: Array, key: Key, greedy: bool = False) -> Array:
    q = state.params[obs]
    if greedy:
        return greedy_action(q)
    return sample(key, epsilon_greedy_probs(q, epsilon_at(state.hparams, state.update_calls)))


def _control_init(config: TabularConfig):
    def init(key: Key, hparams: TabularHParams, obs: Array) -> ControlState:
        del key
        hp = as_leaves(hparams)
        q = jnp.full((config.num_states, config.num_actions), hp.init_value)
        return ControlState(q, hp, PendingRollout.empty(obs), jnp.int32(0))

    return init


def make_q_learning(config: TabularConfig) -> Agent:
    """Q-learning with epsilon-greedy behaviour (S&B section 6.5):
    `Q(s, a) <- Q(s, a) + alpha * (r + gamma * discount * max_a' Q(s', a') - Q(s, a))`."""

    def update(state: ControlState, rollout: Transition, key: Key):
        del key
        hp = state.hparams

        def step(q, tr: Transition):
            td = jax.vmap(losses.q_learning)(
                q[tr.obs], tr.action, tr.reward, hp.gamma * tr.discount, q[tr.next_obs]
            )
            return _scatter_add(q, (tr.obs, tr.action), hp.learning_rate * td), jnp.abs(td)

        q, td = jax.lax.scan(step, state.params, rollout)
        state = state._replace(params=q, update_calls=state.update_calls + 1)
        return state, {"td_abs": jnp.mean(td), "epsilon": epsilon_at(hp, state.update_calls)}

    return Agent(init=_control_init(config), act=_control_act, update=update)


def make_sarsa(config: TabularConfig, expected: bool = False) -> Agent:
    """SARSA (S&B section 6.4) or, with `expected=True`, Expected SARSA (section 6.6), with
    epsilon-greedy behaviour:
    `Q(s, a) <- Q(s, a) + alpha * (r + gamma * discount * Q(s', a') - Q(s, a))`, with `a'`
    the next action taken (SARSA) or `sum_a' pi(a'|s') Q(s', a')` (Expected SARSA).

    SARSA's target needs the next action actually taken, which for the last transition of a
    rollout is only chosen in the next rollout: that transition waits in the state
    (`PendingRollout`) and is applied at the start of the next `update`. At a time-limit
    truncation no next action is taken in the episode, so the next action is sampled from
    the current epsilon-greedy policy at the final observation.
    """

    def update(state: ControlState, rollout: Transition, key: Key):
        hp = state.hparams
        eps = epsilon_at(hp, state.update_calls)
        now, next_action, valid, pending = state.pending.shift(rollout)
        keys, as_key = split_to_scan(key, valid.shape[0])

        def step(q, inputs):
            tr, a_next, ok, k = inputs
            q_t = q[tr.next_obs]
            probs_t = epsilon_greedy_probs(q_t, eps)
            args = (q[tr.obs], tr.action, tr.reward, hp.gamma * tr.discount, q_t)
            if expected:
                td = jax.vmap(losses.expected_sarsa)(*args, probs_t)
            else:
                # Within an episode the next action is the one taken; after a truncation,
                # one is drawn from the policy; after a termination it is not used.
                a_t = jnp.where(tr.done, sample(as_key(k), probs_t), a_next)
                td = jax.vmap(losses.sarsa)(*args, a_t)
            td = jnp.where(ok, td, 0.0)
            return _scatter_add(q, (tr.obs, tr.action), hp.learning_rate * td), jnp.abs(td)

        q, td = jax.lax.scan(step, state.params, (now, next_action, valid, keys))
        state = ControlState(q, hp, pending, state.update_calls + 1)
        return state, {"td_abs": jnp.mean(td), "epsilon": eps}

    return Agent(init=_control_init(config), act=_control_act, update=update)


@hyperparameters
class MCControlHParams(TabularHParams):
    """Monte-Carlo control's hyperparameters: those of `TabularHParams`, and

    Attributes:
      course_returns: compute each state's return as the course's loop does
        (`losses.last_entry_returns`: the rewards and discounts of repeated entries are
        skipped) instead of the usual discounted return from the state's last entry.
    """

    course_returns: bool = False

    def validate(self) -> None:
        super().validate()
        check_bool("MCControlHParams", "course_returns", self.course_returns)


class MCControlState(NamedTuple):
    params: Array  # V [S], the value of arriving in each state
    hparams: MCControlHParams
    trace: Array  # [B, S], gamma^(k - t) since the state's last entry t (0 if none)
    returns: Array  # [B, S], the return so far from the state's last entry
    entry_step: Array  # [B, S], int32, the step that last entered the state; -1: none
    entry_reward: Array  # [B, S], the reward of that step
    episode_steps: Array  # [B], int32, steps of the episode in progress
    update_calls: Array  # shape=(), int32


def make_mc_control(config: TabularConfig, successors: Array) -> Agent:
    """Monte-Carlo control with state values, as the course's `3-monte-carlo/mc_agent.py`
    (rlcode/reinforcement-learning-kr) teaches it: the agent knows where each move leads
    and learns only `V`.

    Behaviour: epsilon-greedy over the values of the cells the actions lead to,
    `q(s, a) = V(successors[s, a])` (`successors [S, A]` int, e.g. `argmax_s' P[s, a, s']`
    of a deterministic model; a move into the wall leads back to `s`), ties broken at
    random; `greedy=True`: the lowest index among ties.

    Learning: `V(s)` is the value of *arriving* in `s`, the return from the step that
    enters `s`, that step's reward included. When an episode terminates, every state it
    entered is updated once, with the return that follows its last entry (the course's loop
    walks back through the episode and updates each state where it first meets it):
    `V(s) <- V(s) + alpha * (G - V(s))`. `G` is the discounted return (accumulated online,
    a per-state trace `gamma^(k - t)` since the last entry `t`) or, with
    `MCControlHParams.course_returns`, the course's (`losses.last_entry_returns`); no
    episode is stored either way. An episode cut by the time limit updates nothing: its
    returns are incomplete.
    """
    S = config.num_states
    successors = jnp.asarray(successors, jnp.int32)
    if successors.shape != (S, config.num_actions):
        raise ValueError(
            f"successors must have shape [S, A] = {(S, config.num_actions)}, got {successors.shape}"
        )

    def init(key: Key, hparams: MCControlHParams, obs: Array) -> MCControlState:
        del key
        hp = as_leaves(hparams)
        B = obs.shape[0]
        zeros = jnp.zeros((B, S), jnp.float32)
        never = jnp.full((B, S), -1, jnp.int32)
        v = jnp.full((S,), hp.init_value)
        steps = jnp.zeros((B,), jnp.int32)
        return MCControlState(v, hp, zeros, zeros, never, zeros, steps, jnp.int32(0))

    def act(state: MCControlState, obs: Array, key: Key, greedy: bool = False) -> Array:
        q = state.params[successors[obs]]  # [B, A]
        if greedy:
            return greedy_action(q)
        epsilon = epsilon_at(state.hparams, state.update_calls)
        return sample(key, epsilon_greedy_probs(q, epsilon))

    def update(state: MCControlState, rollout: Transition, key: Key):
        del key
        hp = state.hparams
        course = jax.vmap(losses.last_entry_returns, in_axes=(0, 0, None))

        def step(carry, tr: Transition):
            v, trace, returns, entry_step, entry_reward, steps = carry
            enter = jax.nn.one_hot(tr.next_obs, S) > 0  # [B, S]
            trace = jnp.where(enter, 1.0, trace)
            returns = jnp.where(enter, 0.0, returns) + tr.reward[:, None] * trace
            entry_step = jnp.where(enter, steps[:, None], entry_step)
            entry_reward = jnp.where(enter, tr.reward[:, None], entry_reward)
            g = jnp.where(hp.course_returns, course(entry_step, entry_reward, hp.gamma), returns)
            # Termination: V(s) += alpha * (G_s - V(s)) for every state entered.
            end = (tr.done & (tr.discount == 0.0))[:, None] & (entry_step >= 0)
            v = v + hp.learning_rate * jnp.sum(jnp.where(end, g - v[None], 0.0), axis=0)
            done = tr.done[:, None]
            carry = (
                jnp.where(done, 0.0, hp.gamma * trace),
                jnp.where(done, 0.0, returns),
                jnp.where(done, -1, entry_step),
                jnp.where(done, 0.0, entry_reward),
                jnp.where(tr.done, 0, steps + 1),
            )
            return (v, *carry), None

        carry = (state.params, state.trace, state.returns, state.entry_step,
                 state.entry_reward, state.episode_steps)  # fmt: skip
        (v, *rest), _ = jax.lax.scan(step, carry, rollout)
        new = MCControlState(v, hp, *rest, state.update_calls + 1)
        metrics = {
            "episodes_ended": jnp.sum(rollout.done).astype(jnp.float32),
            "epsilon": epsilon_at(hp, new.update_calls),
        }
        return new, metrics

    return Agent(init=init, act=act, update=update)


# --- Presets ---------------------------------------------------------------------------

_GRID_TRAIN = TrainConfig(total_env_steps=40_000, chunk_env_steps=1_000, eval_episodes=4)

CONTROL_PRESETS: dict[str, Preset] = {
    # Optimistic values and exploration fading to zero: tests/test_gridworld_learning.py.
    "default": Preset(
        None,
        TabularHParams(
            learning_rate=0.05, gamma=0.9, epsilon=0.3, epsilon_decay=0.9998, init_value=2.0
        ),
        _GRID_TRAIN,
    ),
}

PREDICTION_PRESETS: dict[str, Preset] = {
    "default": Preset(None, TabularHParams(learning_rate=0.05, gamma=0.9), _GRID_TRAIN),
}


def _course(learning_rate: float, epsilon: float, steps: int) -> Preset:
    """A course preset for `GridWorld100-v0` (+100 / -100, the model-free lessons' world):
    gamma 0.9, constant epsilon, zero initial values; greedy episodes stop after 100 steps."""
    hparams = TabularHParams(learning_rate=learning_rate, gamma=0.9, epsilon=epsilon)
    train = TrainConfig(
        total_env_steps=steps, chunk_env_steps=1_000, eval_episodes=1, max_eval_steps=100
    )
    return Preset(None, hparams, train)


# The course's scripts (rlcode/reinforcement-learning-kr, `1-grid-world`) run 1,000
# episodes. The driver counts steps: Q-learning's and MC's budgets hold about 1,000
# episodes; SARSA's seeds often stall beside a wall at first (1,000 episodes took the
# course's own script 7k-199k steps), so it gets 100k steps (docs/course.md).
_COURSE_MC = _course(learning_rate=0.01, epsilon=0.1, steps=7_000)
_COURSE_MC = _COURSE_MC._replace(
    hparams=MCControlHParams(**dataclasses.asdict(_COURSE_MC.hparams), course_returns=True)
)
PRESETS: dict[str, dict[str, Preset]] = {
    "sarsa": {**CONTROL_PRESETS, "course": _course(0.01, 0.1, 100_000)},
    "expected_sarsa": dict(CONTROL_PRESETS),
    "q_learning": {**CONTROL_PRESETS, "course": _course(0.01, 0.9, 14_000)},
    # Not tuned: the default is the course's settings with the usual discounted returns.
    "mc_control": {
        "default": _COURSE_MC._replace(hparams=_COURSE_MC.hparams.replace(course_returns=False)),
        "course": _COURSE_MC,
    },
    # The course has no prediction lesson: its Monte-Carlo lesson's alpha and gamma.
    "td": {**PREDICTION_PRESETS, "course": _course(0.01, 0.0, 20_000)},
    "mc": {**PREDICTION_PRESETS, "course": _course(0.01, 0.0, 20_000)},
}
"""Presets per algorithm (the registry's names): `default` tuned for `GridWorld-v0`,
`course` the course's settings for `GridWorld100-v0`."""


def preset(name: str, prediction: bool = False, algo: str | None = None) -> Preset:
    """The control (or, with `prediction`, prediction) preset called `name`; with `algo`
    (a key of `PRESETS`, e.g. `sarsa`), that algorithm's."""
    if algo is not None:
        if algo not in PRESETS:
            raise ValueError(f"unknown tabular algorithm {algo!r}; known: {sorted(PRESETS)}")
        return pick_preset(PRESETS[algo], name, f"tabular {algo}")
    presets = PREDICTION_PRESETS if prediction else CONTROL_PRESETS
    return pick_preset(presets, name, "tabular")
