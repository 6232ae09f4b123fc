"""Every target, return and loss of rljax's algorithms, written once.

In the style of rlax: each function works on one transition or one trajectory
(unbatched; callers add `jax.vmap`), checks the ranks of its inputs at trace time
(`chex.assert_rank`), and holds its targets constant (`jax.lax.stop_gradient`) so that a
loss built on a TD error differentiates only the estimate being learned.

Discounts. `discount_t` is the discount applied to the bootstrap at step `t`, *gamma
included*: `gamma * Transition.discount`, that is `gamma` within an episode and after a
time-limit truncation, and 0 after a termination. `done_t` (termination or truncation)
marks the end of an episode, where a multi-step return stops.

References: Sutton & Barto (2018), "Reinforcement Learning: An Introduction", 2nd ed.
(S&B); van Hasselt et al. (2016) for Double Q-learning; Schulman et al. (2016) for GAE;
Williams (1992) for REINFORCE.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from rljax.core.types import Array

_sg = jax.lax.stop_gradient


# --- One-step TD errors --------------------------------------------------------------------


def td_learning(v_tm1: Array, r_t: Array, discount_t: Array, v_t: Array) -> Array:
    """TD(0) error `r_t + discount_t * V(s_t) - V(s_tm1)` (S&B eq. 6.2). All `[]`."""
    chex.assert_rank([v_tm1, r_t, discount_t, v_t], 0)
    return _sg(r_t + discount_t * v_t) - v_tm1


def sarsa(
    q_tm1: Array, a_tm1: Array, r_t: Array, discount_t: Array, q_t: Array, a_t: Array
) -> Array:
    """SARSA error `r_t + discount_t * Q(s_t, a_t) - Q(s_tm1, a_tm1)`, with `a_t` the next
    action actually taken (S&B eq. 6.7). `q_tm1, q_t: [A]`, the rest `[]`."""
    chex.assert_rank([q_tm1, a_tm1, r_t, discount_t, q_t, a_t], [1, 0, 0, 0, 1, 0])
    return _sg(r_t + discount_t * q_t[a_t]) - q_tm1[a_tm1]


def expected_sarsa(
    q_tm1: Array, a_tm1: Array, r_t: Array, discount_t: Array, q_t: Array, probs_t: Array
) -> Array:
    """Expected SARSA error `r_t + discount_t * sum_a pi(a|s_t) Q(s_t, a) - Q(s_tm1,
    a_tm1)` (S&B eq. 6.9). `q_tm1, q_t, probs_t: [A]`, the rest `[]`."""
    chex.assert_rank([q_tm1, a_tm1, r_t, discount_t, q_t, probs_t], [1, 0, 0, 0, 1, 1])
    return _sg(r_t + discount_t * jnp.dot(probs_t, q_t)) - q_tm1[a_tm1]


def q_learning(q_tm1: Array, a_tm1: Array, r_t: Array, discount_t: Array, q_t: Array) -> Array:
    """Q-learning error `r_t + discount_t * max_a Q(s_t, a) - Q(s_tm1, a_tm1)` (S&B eq.
    6.8). `q_tm1, q_t: [A]`, the rest `[]`."""
    chex.assert_rank([q_tm1, a_tm1, r_t, discount_t, q_t], [1, 0, 0, 0, 1])
    return _sg(r_t + discount_t * jnp.max(q_t)) - q_tm1[a_tm1]


def double_q_learning(
    q_tm1: Array,
    a_tm1: Array,
    r_t: Array,
    discount_t: Array,
    q_t_value: Array,
    q_t_selector: Array,
) -> Array:
    """Double Q-learning error `r_t + discount_t * Q_value(s_t, argmax_a Q_selector(s_t, a))
    - Q(s_tm1, a_tm1)` (van Hasselt et al. 2016: the target network values the action the
    online network selects). With `q_t_selector = q_t_value` it is `q_learning`.
    `q_tm1, q_t_value, q_t_selector: [A]`, the rest `[]`."""
    chex.assert_rank([q_tm1, a_tm1, r_t, discount_t, q_t_value, q_t_selector], [1, 0, 0, 0, 1, 1])
    return _sg(r_t + discount_t * q_t_value[jnp.argmax(q_t_selector)]) - q_tm1[a_tm1]


def td_loss(td: Array, huber: Array) -> Array:
    """Per-element loss of TD errors `[N]`: Huber (delta 1) where `huber` is true, else
    the squared error `td^2` (Keras' MSE, the course's). `huber` is a boolean leaf."""
    return jnp.where(huber, optax.huber_loss(td), jnp.square(td))


# --- Multi-step returns along one trajectory -------------------------------------------------


def discounted_returns(r_t: Array, discount_t: Array, done_t: Array) -> tuple[Array, Array]:
    """Monte-Carlo returns along one environment's rollout, and which of them are complete.

    Backwards over `t`, with `G_T = 0` and `valid_T = False` past the end:
    `G_t = r_t + discount_t * (1 - done_t) * G_{t+1}`, `valid_t = done_t or valid_{t+1}`.
    There is no bootstrapping: an episode's end (termination or truncation) cuts the
    return. `valid_t` holds iff the episode containing `t` ends within the rollout at or
    after `t`, i.e. iff `G_t` is the whole return to the episode's end (S&B 5.1, 13.3).

    Args:
      r_t: `[T]` rewards.
      discount_t: `[T]` discounts, gamma included.
      done_t: `[T]` bool episode boundaries.

    Returns:
      `(returns [T] float32, valid [T] bool)`.
    """
    chex.assert_rank([r_t, discount_t, done_t], 1)
    chex.assert_equal_shape([r_t, discount_t, done_t])
    carry_on = discount_t * (1.0 - done_t.astype(jnp.float32))

    def step(carry, x):
        g_next, valid_next = carry
        r, c, done = x
        g = r + c * g_next
        valid = done | valid_next
        return (g, valid), (g, valid)

    init = (jnp.zeros((), jnp.float32), jnp.zeros((), bool))
    xs = (r_t.astype(jnp.float32), carry_on, done_t.astype(bool))
    _, (returns, valid) = jax.lax.scan(step, init, xs, reverse=True)
    return returns, valid


def gae(
    r_t: Array,
    discount_t: Array,
    done_t: Array,
    v_tm1: Array,
    v_t: Array,
    lambda_: Array,
) -> tuple[Array, Array]:
    """Generalised advantage estimates and lambda-returns along one environment's rollout.

    Backwards over `t`, with `A_T = 0`:
    `delta_t = r_t + discount_t * V(s'_t) - V(s_t)`,
    `A_t = delta_t + discount_t * lambda * (1 - done_t) * A_{t+1}`,
    `G_t = A_t + V(s_t)` (Schulman et al. 2016; S&B 12.1 for lambda-returns). With
    `lambda = 1`, `G_t` is the n-step return bootstrapped from the critic at the
    rollout's end and at a truncation (`discount_t = gamma`, `done_t`), and nowhere after
    a termination (`discount_t = 0`); `lambda = 0` gives one-step TD errors.

    Args:
      r_t: `[T]` rewards.
      discount_t: `[T]` discounts, gamma included.
      done_t: `[T]` bool episode boundaries.
      v_tm1: `[T]` values `V(s_t)` of the observations acted on.
      v_t: `[T]` values `V(s'_t)` of the true next observations (the final one at an end).
      lambda_: scalar in [0, 1].

    Returns:
      `(advantages [T], targets [T])`, both held constant.
    """
    chex.assert_rank([r_t, discount_t, done_t, v_tm1, v_t], 1)
    chex.assert_equal_shape([r_t, discount_t, done_t, v_tm1, v_t])
    deltas = r_t + discount_t * v_t - v_tm1
    carry_on = discount_t * lambda_ * (1.0 - done_t.astype(jnp.float32))

    def step(a_next, x):
        delta, c = x
        a = delta + c * a_next
        return a, a

    _, advantages = jax.lax.scan(
        step, jnp.zeros((), deltas.dtype), (deltas, carry_on), reverse=True
    )
    return _sg(advantages), _sg(advantages + v_tm1)


# --- Policy-gradient and value losses over a batch ----------------------------------------


def masked_mean(x: Array, w: Array) -> Array:
    """Mean of `x` over the entries where the weight/mask `w` (same shape) is nonzero,
    weighted by `w`; 0 where the weights sum to zero."""
    w = w.astype(jnp.float32)
    return jnp.sum(x * w) / jnp.maximum(jnp.sum(w), 1e-8)


def normalize(x: Array, w: Array) -> Array:
    """`(x - mean) / (std + 1e-8)`, the mean and standard deviation taken over the entries
    where `w` holds (advantage normalisation)."""
    mean = masked_mean(x, w)
    std = jnp.sqrt(masked_mean(jnp.square(x - mean), w))
    return (x - mean) / (std + 1e-8)


def entropy(logits: Array) -> Array:
    """Entropy `H(pi) = -sum_a pi(a) log pi(a)` of softmax policies: `[N, A] -> [N]`."""
    chex.assert_rank(logits, 2)
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)


def policy_gradient_loss(logits_t: Array, a_t: Array, adv_t: Array, w_t: Array) -> Array:
    """REINFORCE / actor loss `-mean_w(log pi(a_t|s_t) * A_t)` (S&B eq. 13.8), the
    advantages held constant. `logits_t [N, A]`, `a_t [N]` int, `adv_t [N]`, `w_t [N]`
    (0/1 mask or weights); returns `[]`."""
    chex.assert_rank([logits_t, a_t, adv_t, w_t], [2, 1, 1, 1])
    log_pi = jax.nn.log_softmax(logits_t)
    log_pi_a = jnp.take_along_axis(log_pi, a_t[:, None], axis=-1)[:, 0]
    return -masked_mean(log_pi_a * _sg(adv_t), w_t)


def entropy_loss(logits_t: Array, w_t: Array) -> Array:
    """`-mean_w(H(pi(.|s_t)))`: minimising it raises the policy's entropy. `logits_t
    [N, A]`, `w_t [N]`; returns `[]`."""
    chex.assert_rank([logits_t, w_t], [2, 1])
    return -masked_mean(entropy(logits_t), w_t)


def value_loss(v_t: Array, target_t: Array, w_t: Array) -> Array:
    """`mean_w((V(s_t) - G_t)^2)`, the targets held constant. All `[N]`; returns `[]`."""
    chex.assert_rank([v_t, target_t, w_t], 1)
    return masked_mean(jnp.square(v_t - _sg(target_t)), w_t)


# --- Returns of an episode, accumulated online --------------------------------------------


class ReturnMoments(NamedTuple):
    """Running sums over the steps of one episode so far that give `sum_t G_t` and
    `sum_t G_t^2`, with `G_t = sum_{t <= k <= K} gamma^(k - t) r_k` the return from `t`
    counting the rewards received up to the current step `K` (the complete returns once
    the episode has ended). Leaves `[]`; `return_moments_step` adds one reward."""

    count: Array  # steps so far
    trace: Array  # sum_{t <= K} gamma^(K - t)
    trace_sq: Array  # sum_{t <= K} gamma^(2 (K - t))
    cross: Array  # sum_{t <= K} gamma^(K - t) G_t
    sum_g: Array  # sum_{t <= K} G_t
    sum_g_sq: Array  # sum_{t <= K} G_t^2

    @staticmethod
    def zeros() -> ReturnMoments:
        z = jnp.zeros((), jnp.float32)
        return ReturnMoments(z, z, z, z, z, z)


def return_moments_step(m: ReturnMoments, r_t: Array, gamma: Array) -> ReturnMoments:
    """Add the reward `r_t` of a new step to the running sums (every earlier return gains
    `gamma^(t - k) r_t`, the new one is `r_t`):

        sum G   += r_t * trace_t,                       trace_t = gamma * trace + 1
        sum G^2 += r_t^2 * trace_sq_t + 2 gamma r_t * cross,
                                                        trace_sq_t = gamma^2 * trace_sq + 1
        cross_t  = gamma * cross + r_t * trace_sq_t

    All `[]`. With them a per-episode normalisation of the returns (as the course's
    REINFORCE does) needs no stored episode: `return_mean_std`."""
    chex.assert_rank([r_t, gamma], 0)
    trace = gamma * m.trace + 1.0
    trace_sq = jnp.square(gamma) * m.trace_sq + 1.0
    return ReturnMoments(
        count=m.count + 1.0,
        trace=trace,
        trace_sq=trace_sq,
        cross=gamma * m.cross + r_t * trace_sq,
        sum_g=m.sum_g + r_t * trace,
        sum_g_sq=m.sum_g_sq + jnp.square(r_t) * trace_sq + 2.0 * gamma * r_t * m.cross,
    )


def return_mean_std(m: ReturnMoments) -> tuple[Array, Array]:
    """The mean and (population) standard deviation of the returns `G_t` of the steps in
    `m`, as `normalize` takes them; `[]` each."""
    n = jnp.maximum(m.count, 1.0)
    mean = m.sum_g / n
    return mean, jnp.sqrt(jnp.maximum(m.sum_g_sq / n - jnp.square(mean), 0.0))


def last_entry_returns(entry_step: Array, entry_reward: Array, discount: Array) -> Array:
    """The returns the course's Monte-Carlo agent (rlcode/reinforcement-learning-kr,
    `1-grid-world/3-monte-carlo/mc_agent.py`) assigns at the end of an episode.

    Its loop walks back through the episode and uses only the step that *last* entered each
    state, skipping the reward and the discount of every earlier entry: with `t_y` the
    step that last entered `y` and `r_y` its reward,
    `G(x) = sum_{y: t_y >= t_x} discount^rank(x, y) * r_y`, where
    `rank(x, y) = #{z : t_x < t_z <= t_y}` counts the states last entered after `x`, up to
    `y`. Without repeated states this is the usual return from `x`'s entry; with them it
    is larger in magnitude (fewer discounts).

    Args:
      entry_step: `[S]` the step that last entered each state; negative: never entered.
      entry_reward: `[S]` the reward of that step.
      discount: `[]` gamma.

    Returns:
      `[S]` float32, 0 for the states never entered.
    """
    chex.assert_rank([entry_step, entry_reward, discount], [1, 1, 0])
    t = entry_step.astype(jnp.float32)
    entered = entry_step >= 0
    later = entered[None, :] & (t[None, :] > t[:, None])  # [x, z]: z last entered after x
    # rank[x, y] = #{z entered : t_x < t_z <= t_y}
    rank = jnp.sum(later[:, None, :] & (t[None, None, :] <= t[None, :, None]), axis=-1)
    counts = entered[None, :] & (t[None, :] >= t[:, None])  # [x, y]: y at or after x
    g = jnp.sum(jnp.where(counts, discount ** rank.astype(jnp.float32) * entry_reward, 0.0), -1)
    return jnp.where(entered, g, 0.0).astype(jnp.float32)
