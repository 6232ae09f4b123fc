"""Tabular prediction and control: Monte-Carlo and TD(0) prediction, SARSA, Expected SARSA,
Q-learning. Sutton & Barto (2018), chapters 5 and 6.

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

import chex
import jax
import jax.numpy as jnp
from flax import struct

from rljax.dp import check_policy
from rljax.exploration import epsilon_at
from rljax.types import Agent, Array, Key, Transition, check_values


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
        for name in ("num_states", "num_actions"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TabularConfig.{name} must be an integer >= 1, got {value!r}")


@struct.dataclass
class TabularHParams:
    """Numeric hyperparameters (traced; a batch of them is one `vmap`).

    Attributes:
      learning_rate: the step size alpha in `V(s) <- V(s) + alpha * (target - V(s))`.
      gamma: discount factor in [0, 1].
      epsilon, epsilon_end, epsilon_decay: exploration of the control agents,
        `max(epsilon_end, epsilon * epsilon_decay ** updates)` (decay 1: constant).
      init_value: the tables' initial value.
    """

    learning_rate: float = 0.1
    gamma: float = 0.9
    epsilon: float = 0.1
    epsilon_end: float = 0.0
    epsilon_decay: float = 1.0
    init_value: float = 0.0

    def __post_init__(self) -> None:
        check = lambda name, **kw: check_values("TabularHParams", name, getattr(self, name), **kw)  # noqa: E731
        check("learning_rate", low=0.0, high=1.0, low_open=True)
        check("gamma", low=0.0, high=1.0)
        check("epsilon", low=0.0, high=1.0)
        check("epsilon_end", low=0.0, high=1.0)
        check("epsilon_decay", low=0.0, high=1.0)
        check("init_value", low=-math.inf, high=math.inf, low_open=True, high_open=True)


# --- Target functions: one transition, unbatched ------------------------------------------


def td_target(r_t: Array, discount_t: Array, v_t: Array, gamma: Array) -> Array:
    """TD(0) target `r_t + gamma * discount_t * V(s_t)` (S&B eq. 6.2). All shapes `[]`."""
    chex.assert_rank([r_t, discount_t, v_t], 0)
    return r_t + gamma * discount_t * v_t


def sarsa_target(r_t: Array, discount_t: Array, q_t: Array, a_t: Array, gamma: Array) -> Array:
    """SARSA target `r_t + gamma * discount_t * Q(s_t, a_t)` with `a_t` the next action
    actually taken (S&B eq. 6.7). `q_t: [A]`, the rest `[]`."""
    chex.assert_rank([r_t, discount_t, q_t, a_t], [0, 0, 1, 0])
    return r_t + gamma * discount_t * q_t[a_t]


def expected_sarsa_target(
    r_t: Array, discount_t: Array, q_t: Array, probs_t: Array, gamma: Array
) -> Array:
    """Expected SARSA target `r_t + gamma * discount_t * sum_a pi(a|s_t) Q(s_t, a)`
    (S&B eq. 6.9). `q_t, probs_t: [A]`, the rest `[]`."""
    chex.assert_rank([r_t, discount_t, q_t, probs_t], [0, 0, 1, 1])
    return r_t + gamma * discount_t * jnp.dot(probs_t, q_t)


def q_learning_target(r_t: Array, discount_t: Array, q_t: Array, gamma: Array) -> Array:
    """Q-learning target `r_t + gamma * discount_t * max_a Q(s_t, a)` (S&B eq. 6.8).
    `q_t: [A]`, the rest `[]`."""
    chex.assert_rank([r_t, discount_t, q_t], [0, 0, 1])
    return r_t + gamma * discount_t * jnp.max(q_t)


def epsilon_greedy_probs(q: Array, epsilon: Array) -> Array:
    """Action probabilities `[..., A]` of epsilon-greedy on `q [..., A]`; ties in the
    maximum share the greedy mass equally."""
    best = (q == jnp.max(q, axis=-1, keepdims=True)).astype(jnp.float32)
    greedy = best / jnp.sum(best, axis=-1, keepdims=True)
    return (1.0 - epsilon) * greedy + epsilon / q.shape[-1]


def _sample(key: Key, probs: Array) -> Array:
    """One action per row of `probs [..., A]`, by inverse CDF from a single uniform draw."""
    u = jax.random.uniform(key, (*probs.shape[:-1], 1))
    cdf = jnp.cumsum(probs, axis=-1)[..., :-1]
    return jnp.sum(u >= cdf, axis=-1).astype(jnp.int32)


def _greedy(q: Array) -> Array:
    return jnp.argmax(q, axis=-1).astype(jnp.int32)


def _hparams(hparams: TabularHParams) -> TabularHParams:
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), hparams)


def _scatter_add(table: Array, index: Any, values: Array) -> Array:
    return table.at[index].add(values)


# --- Prediction --------------------------------------------------------------------------


class PredictionState(NamedTuple):
    params: Array  # V [S]
    policy: Array  # [S, A], the policy evaluated (also the behaviour)
    hparams: TabularHParams
    updates: Array  # shape=(), int32


def _prediction_policy(config: TabularConfig, policy: Array | None) -> Array:
    S, A = config.num_states, config.num_actions
    policy = jnp.full((S, A), 1.0 / A) if policy is None else policy
    check_policy(policy, S, A)
    return jnp.asarray(policy, jnp.float32)


def _check_num_envs(name: str, num_envs: int, rollout: Transition) -> None:
    got = rollout.done.shape[1]
    if got != num_envs:
        raise ValueError(f"{name} was built with num_envs={num_envs}, the driver runs {got}")


def _policy_act(state: PredictionState, obs: Array, key: Key, greedy: bool = False) -> Array:
    probs = state.policy[obs]
    return _greedy(probs) if greedy else _sample(key, probs)


def make_td_prediction(config: TabularConfig, policy: Array | None = None) -> Agent:
    """TD(0) prediction of `policy` (`[S, A]`, also the behaviour; uniform random by
    default). Per transition, in time order:
    `V(s) <- V(s) + alpha * (r + gamma * discount * V(s') - V(s))` (S&B section 6.1).
    """
    S = config.num_states
    policy = _prediction_policy(config, policy)

    def init(key: Key, hparams: TabularHParams, obs: Array) -> PredictionState:
        del key, obs
        hp = _hparams(hparams)
        return PredictionState(
            params=jnp.full((S,), hp.init_value),
            policy=policy,
            hparams=hp,
            updates=jnp.int32(0),
        )

    def update(state: PredictionState, rollout: Transition, key: Key):
        del key
        hp = state.hparams

        def step(v, tr: Transition):
            target = jax.vmap(td_target, in_axes=(0, 0, 0, None))(
                tr.reward, tr.discount, v[tr.next_obs], hp.gamma
            )
            td = target - v[tr.obs]
            return _scatter_add(v, tr.obs, hp.learning_rate * td), jnp.mean(jnp.abs(td))

        v, td = jax.lax.scan(step, state.params, rollout)
        state = state._replace(params=v, updates=state.updates + 1)
        return state, {"td_abs": jnp.mean(td)}

    return Agent(init=init, act=_policy_act, update=update)


class MCState(NamedTuple):
    params: Array  # V [S]
    policy: Array  # [S, A]
    hparams: TabularHParams
    trace: (
        Array  # [B, S], sum over visits t <= k of gamma^(k - t) (first visits only if first-visit)
    )
    visits: Array  # [B, S], visits counted in the episode in progress
    returns: Array  # [B, S], sum over counted visits of the return so far
    updates: Array  # shape=(), int32


def make_mc_prediction(
    config: TabularConfig, num_envs: int, policy: Array | None = None, first_visit: bool = True
) -> Agent:
    """Monte-Carlo prediction of `policy` (`[S, A]`, uniform by default), first-visit or
    every-visit (S&B section 5.1), with a constant step size:
    `V(s) <- V(s) + alpha * (G_t - V(s))` for each counted visit `t` of `s`, applied when the
    episode ends.

    Returns are accumulated online instead of storing episodes: a per-state trace
    `e(s) = sum_{counted visits t <= k} gamma^(k - t)` decays by gamma each step, and each
    reward adds `r_{k+1} * e(s)` to the state's summed return, so the episode's complete
    returns are known at its last step without a backward pass. `num_envs` must equal the
    driver's `B`. An episode cut by the time limit is completed with the bootstrapped value
    `gamma * V(s_T)` of its final observation (a truncated return is not a Monte-Carlo one).
    """
    S, B = config.num_states, num_envs
    policy = _prediction_policy(config, policy)

    def init(key: Key, hparams: TabularHParams, obs: Array) -> MCState:
        del key, obs
        hp = _hparams(hparams)
        zeros = jnp.zeros((B, S), jnp.float32)
        return MCState(
            params=jnp.full((S,), hp.init_value),
            policy=policy,
            hparams=hp,
            trace=zeros,
            visits=zeros,
            returns=zeros,
            updates=jnp.int32(0),
        )

    def update(state: MCState, rollout: Transition, key: Key):
        del key
        _check_num_envs("make_mc_prediction", B, rollout)
        hp = state.hparams
        one_hot = jax.nn.one_hot  # [B] -> [B, S]

        def step(carry, tr: Transition):
            v, trace, visits, returns = carry
            visit = one_hot(tr.obs, S)
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
        state = state._replace(
            params=v, trace=trace, visits=visits, returns=returns, updates=state.updates + 1
        )
        return state, {"episodes_ended": episodes.astype(jnp.float32)}

    return Agent(init=init, act=_policy_act, update=update)


# --- Control -----------------------------------------------------------------------------


class ControlState(NamedTuple):
    params: Array  # Q [S, A]
    hparams: TabularHParams
    pending: Transition  # [B], SARSA only: the last transition, waiting for its next action
    has_pending: Array  # shape=(), bool
    updates: Array  # shape=(), int32


def _control_act(state: ControlState, obs: Array, key: Key, greedy: bool = False) -> Array:
    q = state.params[obs]
    if greedy:
        return _greedy(q)
    return _sample(key, epsilon_greedy_probs(q, epsilon_at(state.hparams, state.updates)))


def _control_init(config: TabularConfig, num_envs: int):
    def init(key: Key, hparams: TabularHParams, obs: Array) -> ControlState:
        del key
        hp = _hparams(hparams)
        zeros = jnp.zeros((num_envs,), jnp.float32)
        pending = Transition(
            obs=jnp.zeros((num_envs, *jnp.shape(obs)), jnp.int32),
            action=jnp.zeros((num_envs,), jnp.int32),
            reward=zeros,
            discount=zeros,
            next_obs=jnp.zeros((num_envs, *jnp.shape(obs)), jnp.int32),
            done=jnp.zeros((num_envs,), bool),
        )
        return ControlState(
            params=jnp.full((config.num_states, config.num_actions), hp.init_value),
            hparams=hp,
            pending=pending,
            has_pending=jnp.bool_(False),
            updates=jnp.int32(0),
        )

    return init


def make_q_learning(config: TabularConfig, num_envs: int = 1) -> Agent:
    """Q-learning with epsilon-greedy behaviour (S&B section 6.5):
    `Q(s, a) <- Q(s, a) + alpha * (r + gamma * discount * max_a' Q(s', a') - Q(s, a))`."""

    def update(state: ControlState, rollout: Transition, key: Key):
        del key
        hp = state.hparams

        def step(q, tr: Transition):
            target = jax.vmap(q_learning_target, in_axes=(0, 0, 0, None))(
                tr.reward, tr.discount, q[tr.next_obs], hp.gamma
            )
            td = target - q[tr.obs, tr.action]
            return _scatter_add(q, (tr.obs, tr.action), hp.learning_rate * td), jnp.abs(td)

        q, td = jax.lax.scan(step, state.params, rollout)
        state = state._replace(params=q, updates=state.updates + 1)
        return state, {"td_abs": jnp.mean(td), "epsilon": epsilon_at(hp, state.updates)}

    return Agent(init=_control_init(config, num_envs), act=_control_act, update=update)


def make_sarsa(config: TabularConfig, num_envs: int = 1, expected: bool = False) -> Agent:
    """SARSA (S&B section 6.4) or, with `expected=True`, Expected SARSA (section 6.6), with
    epsilon-greedy behaviour.

    SARSA's target needs the next action actually taken, which for the last transition of a
    rollout is only chosen in the next rollout: that transition waits in the state
    (`pending`) and is applied at the start of the next `update`. At a time-limit
    truncation no next action is taken in the episode, so the next action is sampled from
    the current epsilon-greedy policy at the final observation.
    """

    def update(state: ControlState, rollout: Transition, key: Key):
        _check_num_envs("make_sarsa", num_envs, rollout)
        hp = state.hparams
        eps = epsilon_at(hp, state.updates)
        # Transitions to apply now: the pending one (if any), then all but the last.
        seq = jax.tree.map(lambda p, r: jnp.concatenate([p[None], r]), state.pending, rollout)
        valid = jnp.ones(seq.done.shape[0], bool).at[0].set(state.has_pending)
        keys = jax.random.split(key, seq.done.shape[0] - 1)

        def step(q, inputs):
            tr, next_action, ok, k = inputs
            probs_t = epsilon_greedy_probs(q[tr.next_obs], eps)
            if expected:
                target = jax.vmap(expected_sarsa_target, in_axes=(0, 0, 0, 0, None))(
                    tr.reward, tr.discount, q[tr.next_obs], probs_t, hp.gamma
                )
            else:
                # Within an episode the next action is the one taken; after a truncation,
                # one is drawn from the policy; after a termination it is not used.
                a_t = jnp.where(tr.done, _sample(k, probs_t), next_action)
                target = jax.vmap(sarsa_target, in_axes=(0, 0, 0, 0, None))(
                    tr.reward, tr.discount, q[tr.next_obs], a_t, hp.gamma
                )
            td = jnp.where(ok, target - q[tr.obs, tr.action], 0.0)
            return _scatter_add(q, (tr.obs, tr.action), hp.learning_rate * td), jnp.abs(td)

        now = jax.tree.map(lambda x: x[:-1], seq)
        inputs = (now, seq.action[1:], valid[:-1], keys)
        q, td = jax.lax.scan(step, state.params, inputs)
        state = ControlState(
            params=q,
            hparams=hp,
            pending=jax.tree.map(lambda x: x[-1], seq),
            has_pending=jnp.bool_(True),
            updates=state.updates + 1,
        )
        return state, {"td_abs": jnp.mean(td), "epsilon": eps}

    return Agent(init=_control_init(config, num_envs), act=_control_act, update=update)
