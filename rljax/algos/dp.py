"""Dynamic programming on a known finite MDP: policy evaluation, policy iteration, value
iteration. Sutton & Barto (2018), chapter 4.

The model is three arrays (for example `rljax.envs.gridworld.transition_model`):
`P [S, A, S]` with `P[s, a, s'] = p(s' | s, a)`, `R [S, A]` the expected reward
`r(s, a)`, and `terminal [S]` bool. The value of a terminal state is 0 by definition: every
backup writes 0 there, whatever `P` and `R` say. Policies are `[S, A]` arrays of
probabilities `pi(a | s)`.

Every function is pure and jittable, and `gamma` (like `tol`) may be traced, so
`jax.vmap` over a batch of discounts solves them all at once (a batched `while_loop` runs
until the slowest member has converged; the others keep their converged values and
counts). Inputs are checked (`ValueError` naming the bad one) when they are concrete, that
is before anything is compiled; inside a user's `jit`/`vmap` the checks are skipped.

Ties. A greedy policy either puts all its probability on the lowest-index best action (the
default, deterministic) or, with `spread_ties=True`, spreads it equally over every action
within `tie_tol = 10 * tol / (1 - gamma)` of the best (more than the error of a
`tol`-converged evaluation), as the course's policy improvement does (rlcode/
reinforcement-learning-kr, `1-grid-world/1-policy-iteration`: at gamma 0.9 its start cell
gets down/right 0.5/0.5).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rljax.core.config import Preset, TrainConfig, pick_preset
from rljax.core.types import Agent, Array, Key, Transition
from rljax.core.validation import (
    as_leaves,
    check_counts,
    check_values,
    hyperparameters,
    is_concrete,
)
from rljax.exploration import greedy_action, sample


class DPResult(NamedTuple):
    """What policy iteration and value iteration return (leaves gain `[G, ...]` under vmap)."""

    V: Array  # [S], float32, state values of `policy`
    Q: Array  # [S, A], float32, action values computed from V
    policy: Array  # [S, A], float32, greedy one-hot policy
    sweeps: Array  # shape=(), int32, Bellman sweeps over all states in total
    iterations: Array  # shape=(), int32, policy-improvement steps (value iteration: = sweeps)


# ----------------------------------------------------------------------------- validation


def _check_model(P: Any, R: Any, terminal: Any) -> tuple[int, int]:
    """Check the model's shapes (always: shapes are static) and, when concrete, that `P`'s
    rows are distributions. Returns `(S, A)`."""
    P_shape, R_shape, t_shape = np.shape(P), np.shape(R), np.shape(terminal)
    if len(P_shape) != 3 or P_shape[0] != P_shape[2]:
        raise ValueError(f"P must have shape [S, A, S], got {P_shape}")
    S, A = P_shape[0], P_shape[1]
    if R_shape != (S, A):
        raise ValueError(f"R must have shape [S, A] = {(S, A)}, got {R_shape}")
    if t_shape != (S,):
        raise ValueError(f"terminal must have shape [S] = {(S,)}, got {t_shape}")
    if is_concrete(P):
        p = np.asarray(P, np.float64)
        if np.any(p < -1e-6) or not np.allclose(p.sum(-1), 1.0, atol=1e-5):
            raise ValueError("P[s, a, :] must be probability distributions (>= 0, sum to 1)")
    return S, A


def _check_gamma(gamma: Any) -> None:
    # gamma = 1 is allowed: on an episodic world where every policy ends (or earns nothing
    # forever) the sweeps converge; elsewhere they stop at max_sweeps (see `converged`).
    check_values("dp", "gamma", gamma, low=0.0, high=1.0)


def _check_tol(tol: Any, max_sweeps: Any) -> None:
    check_values("dp", "tol", tol, low=0.0, low_open=True)
    check_values("dp", "max_sweeps", max_sweeps, low=1.0, integer=True)


def check_policy(policy: Any, S: int, A: int) -> None:
    """Raise `ValueError` unless `policy` is `[S, A]` with rows of probabilities summing to
    one (values checked when concrete, the shape always)."""
    if np.shape(policy) != (S, A):
        raise ValueError(f"policy must have shape [S, A] = {(S, A)}, got {np.shape(policy)}")
    if is_concrete(policy):
        pi = np.asarray(policy, np.float64)
        sums = pi.sum(-1)
        if np.any(pi < -1e-6) or not np.allclose(sums, 1.0, atol=1e-5):
            bad = int(np.argmax(np.abs(sums - 1.0) + (pi.min(-1) < -1e-6)))
            raise ValueError(
                f"policy rows must be probabilities summing to one; row {bad} is "
                f"{pi[bad].tolist()} (sum {sums[bad]:g})"
            )


# ------------------------------------------------------------------------------ backups


def q_from_v(P: Array, R: Array, V: Array, gamma: Array) -> Array:
    """Action values from state values: `Q(s, a) = r(s, a) + gamma * sum_s' p(s'|s,a) V(s')`
    (Sutton & Barto eq. 4.6). Shapes: `P [S, A, S]`, `R [S, A]`, `V [S]`; returns
    `[S, A]`. Pass `V` with zeros at terminal states (as every function here returns)."""
    return R + gamma * jnp.einsum("sat,t->sa", P, V)


def greedy_policy(Q: Array, tie_tol: float | Array | None = None) -> Array:
    """The greedy policy of `Q [S, A]`, `[S, A]` float32. With `tie_tol=None` it is one-hot
    and ties go to the lowest action index (`argmax`, deterministic); with a number, every
    action within `tie_tol` of the row's maximum gets an equal share (the course's rule)."""
    if tie_tol is None:
        return jax.nn.one_hot(jnp.argmax(Q, axis=-1), Q.shape[-1], dtype=jnp.float32)
    gap = jnp.max(Q, axis=-1, keepdims=True) - Q
    best = (gap <= tie_tol).astype(jnp.float32)
    return best / jnp.sum(best, axis=-1, keepdims=True)


def _tie_tol(spread_ties: bool, tol: Array, gamma: Array) -> Array | None:
    """The tie tolerance of a solver: `10 * tol / (1 - gamma)`, or None (lowest index)."""
    return 10.0 * tol / (1.0 - gamma) if spread_ties else None


def _evaluate(P, R, terminal, policy, gamma, tol, max_sweeps, V0):
    """Synchronous Bellman expectation sweeps from `V0` until `max |dV| < tol`."""
    P_pi = jnp.einsum("sa,sat->st", policy, P)
    R_pi = jnp.sum(policy * R, axis=-1)

    def backup(V):
        return jnp.where(terminal, 0.0, R_pi + gamma * P_pi @ V)

    def cond(carry):
        _, delta, sweeps = carry
        return (delta >= tol) & (sweeps < max_sweeps)

    def body(carry):
        V, _, sweeps = carry
        V_new = backup(V)
        return V_new, jnp.max(jnp.abs(V_new - V)), sweeps + 1

    V0 = jnp.where(terminal, 0.0, V0)
    init = (V0, jnp.asarray(jnp.inf, V0.dtype), jnp.int32(0))
    V, _, sweeps = jax.lax.while_loop(cond, body, init)
    return V, sweeps


def policy_evaluation(
    P: Array,
    R: Array,
    terminal: Array,
    policy: Array,
    gamma: float | Array,
    tol: float = 1e-6,
    max_sweeps: int = 10_000,
) -> tuple[Array, Array]:
    """Iterative policy evaluation (Sutton & Barto section 4.1, eq. 4.5): from `V = 0`,
    synchronous sweeps of the Bellman expectation backup
    `V_{k+1}(s) = sum_a pi(a|s) [r(s, a) + gamma * sum_s' p(s'|s,a) V_k(s')]`,
    `V(terminal) = 0`, until `max_s |V_{k+1}(s) - V_k(s)| < tol` or `max_sweeps` sweeps.

    Args:
      P: `[S, A, S]` transition probabilities.
      R: `[S, A]` expected rewards.
      terminal: `[S]` bool.
      policy: `[S, A]` probabilities, rows summing to one.
      gamma: discount in [0, 1) (traced: vmappable).
      tol: stopping threshold on the largest change of one sweep.
      max_sweeps: safety bound on the number of sweeps.

    Returns:
      `(V [S] float32, sweeps [] int32)`.

    Raises:
      ValueError: for bad shapes, a policy whose rows are not distributions, or a `gamma`
        outside [0, 1) (when concrete).
    """
    S, A = _check_model(P, R, terminal)
    check_policy(policy, S, A)
    _check_gamma(gamma)
    _check_tol(tol, max_sweeps)
    return _policy_evaluation_jit(P, R, terminal, policy, gamma, tol, max_sweeps)


@jax.jit
def _policy_evaluation_jit(P, R, terminal, policy, gamma, tol, max_sweeps):
    P, R, policy = (jnp.asarray(x, jnp.float32) for x in (P, R, policy))
    V0 = jnp.zeros(P.shape[0], jnp.float32)
    return _evaluate(P, R, terminal, policy, gamma, tol, max_sweeps, V0)


def policy_improvement(
    P: Array,
    R: Array,
    V: Array,
    gamma: float | Array,
    spread_ties: bool = False,
    tol: float | Array = 1e-6,
) -> tuple[Array, Array]:
    """Policy improvement (Sutton & Barto section 4.2, eq. 4.9):
    `pi'(s) = argmax_a [r(s, a) + gamma * sum_s' p(s'|s,a) V(s')]`.

    Shapes: `P [S, A, S]`, `R [S, A]`, `V [S]`. Returns `(policy [S, A], Q [S, A])`; ties go
    to the lowest action index (one-hot), or with `spread_ties` are shared equally among
    the actions within `10 * tol / (1 - gamma)` of the best (`tol`: the accuracy `V` was
    evaluated to), the course's rule.
    """
    return _improve(P, R, V, gamma, _tie_tol(spread_ties, tol, gamma))


def _improve(P, R, V, gamma, tie_tol):
    Q = q_from_v(P, R, V, gamma)
    return greedy_policy(Q, tie_tol), Q


def policy_iteration(
    P: Array,
    R: Array,
    terminal: Array,
    gamma: float | Array,
    tol: float = 1e-6,
    max_sweeps: int = 10_000,
    max_iterations: int = 1_000,
    policy: Array | None = None,
    spread_ties: bool = False,
) -> DPResult:
    """Policy iteration (Sutton & Barto section 4.3): alternate policy evaluation (eq. 4.5,
    warm-started from the previous policy's values) and greedy improvement (eq. 4.9) until
    the policy is stable.

    Stability allows for the evaluation error: the policy is stable when, in every state,
    its expected action value `sum_a pi(a|s) Q(s, a)` is within `stable_tol` of
    `max_a Q(s, a)`, with `stable_tol = 10 * tol / (1 - gamma)` (bigger than the error of a
    `tol`-converged evaluation). This is the fix of Sutton & Barto's exercise 4.4 for
    policy iteration that switches forever between equally good policies.

    Args:
      P, R, terminal: the model, `[S, A, S]`, `[S, A]`, `[S]`.
      gamma: discount in [0, 1) (traced: vmappable).
      tol, max_sweeps: per evaluation, as in `policy_evaluation`.
      max_iterations: safety bound on the number of improvement steps.
      policy: the initial `[S, A]` policy; default uniform random.
      spread_ties: (static) improvement spreads the probability equally over the actions
        within `stable_tol` of the best (the course's rule) instead of taking the lowest
        index.

    Returns:
      `DPResult`: `V` and `Q` of the last evaluated (stable) policy, `policy` greedy with
      respect to that `Q` (one-hot, ties to the lowest index, or spread over the ties: it
      may differ from the stable policy only between actions within `stable_tol`), total
      evaluation `sweeps`, and `iterations` (evaluations, including the last one that found
      the policy stable).

    Raises:
      ValueError: for bad shapes, an initial policy that is not a distribution per state,
        or a `gamma` outside [0, 1) (when concrete).
    """
    S, A = _check_model(P, R, terminal)
    if policy is None:
        policy = jnp.full((S, A), 1.0 / A, jnp.float32)
    check_policy(policy, S, A)
    _check_gamma(gamma)
    _check_tol(tol, max_sweeps)
    check_values("dp", "max_iterations", max_iterations, low=1.0, integer=True)
    return _policy_iteration_jit(
        P, R, terminal, gamma, tol, max_sweeps, max_iterations, policy, bool(spread_ties)
    )


@functools.partial(jax.jit, static_argnames="spread_ties")
def _policy_iteration_jit(
    P, R, terminal, gamma, tol, max_sweeps, max_iterations, policy, spread_ties=False
):
    P, R, policy = (jnp.asarray(x, jnp.float32) for x in (P, R, policy))
    stable_tol = 10.0 * tol / jnp.maximum(1.0 - gamma, 1e-2)
    tie_tol = _tie_tol(spread_ties, tol, gamma)

    def body(carry):
        policy, V, _, sweeps, iterations, _ = carry
        V, n = _evaluate(P, R, terminal, policy, gamma, tol, max_sweeps, V)
        greedy, Q = _improve(P, R, V, gamma, tie_tol)
        expected = jnp.sum(policy * Q, axis=-1)
        stable = jnp.all(expected >= jnp.max(Q, axis=-1) - stable_tol)
        return greedy, V, Q, sweeps + n, iterations + 1, stable

    def cond(carry):
        *_, iterations, stable = carry
        return ~stable & (iterations < max_iterations)

    S, A = R.shape
    init = (policy, jnp.zeros((S,)), jnp.zeros((S, A)), jnp.int32(0), jnp.int32(0), False)
    _, V, Q, sweeps, iterations, _ = jax.lax.while_loop(cond, body, init)
    policy = greedy_policy(Q, tie_tol)
    return DPResult(V=V, Q=Q, policy=policy, sweeps=sweeps, iterations=iterations)


def value_iteration(
    P: Array,
    R: Array,
    terminal: Array,
    gamma: float | Array,
    tol: float = 1e-6,
    max_sweeps: int = 10_000,
    spread_ties: bool = False,
) -> DPResult:
    """Value iteration (Sutton & Barto section 4.4, eq. 4.10): from `V = 0`, synchronous
    sweeps of the Bellman optimality backup
    `V_{k+1}(s) = max_a [r(s, a) + gamma * sum_s' p(s'|s,a) V_k(s')]`, `V(terminal) = 0`,
    until `max_s |V_{k+1}(s) - V_k(s)| < tol` or `max_sweeps` sweeps; the policy is greedy
    with respect to the final values (eq. 4.9, ties to the lowest action index).

    Args:
      P, R, terminal: the model, `[S, A, S]`, `[S, A]`, `[S]`.
      gamma: discount in [0, 1) (traced: vmappable).
      tol: stopping threshold on the largest change of one sweep.
      max_sweeps: safety bound on the number of sweeps.
      spread_ties: (static) the policy spreads its probability equally over the actions
        within `10 * tol / (1 - gamma)` of the best, instead of taking the lowest index.

    Returns:
      `DPResult` with `V [S]`, `Q [S, A]` (from the final `V`), the greedy `policy [S, A]`
      (one-hot, or spread over ties), `sweeps`, and `iterations = sweeps`.

    Raises:
      ValueError: for bad shapes or a `gamma` outside [0, 1) (when concrete).
    """
    _check_model(P, R, terminal)
    _check_gamma(gamma)
    _check_tol(tol, max_sweeps)
    return _value_iteration_jit(P, R, terminal, gamma, tol, max_sweeps, bool(spread_ties))


@functools.partial(jax.jit, static_argnames="spread_ties")
def _value_iteration_jit(P, R, terminal, gamma, tol, max_sweeps, spread_ties=False):
    P, R = jnp.asarray(P, jnp.float32), jnp.asarray(R, jnp.float32)

    def cond(carry):
        _, delta, sweeps = carry
        return (delta >= tol) & (sweeps < max_sweeps)

    def body(carry):
        V, _, sweeps = carry
        V_new = jnp.where(terminal, 0.0, jnp.max(q_from_v(P, R, V, gamma), axis=-1))
        return V_new, jnp.max(jnp.abs(V_new - V)), sweeps + 1

    init = (jnp.zeros(P.shape[0], jnp.float32), jnp.float32(jnp.inf), jnp.int32(0))
    V, _, sweeps = jax.lax.while_loop(cond, body, init)
    Q = q_from_v(P, R, V, gamma)
    policy = greedy_policy(Q, _tie_tol(spread_ties, tol, gamma))
    return DPResult(V=V, Q=Q, policy=policy, sweeps=sweeps, iterations=sweeps)


# ------------------------------------------------------------- planning as an agent


@dataclasses.dataclass(frozen=True)
class DPConfig:
    """Static settings of a planning agent.

    Attributes:
      method: `value_iteration` or `policy_iteration`.
      max_sweeps: safety bound on the Bellman sweeps (per evaluation for policy iteration).
      max_iterations: safety bound on policy iteration's improvement steps.
      spread_ties: the greedy policy shares its probability equally among tied actions
        (the course's rule; the agent then samples among them) instead of taking the
        lowest index.
    """

    method: str = "value_iteration"
    max_sweeps: int = 10_000
    max_iterations: int = 1_000
    spread_ties: bool = False

    def __post_init__(self) -> None:
        if self.method not in ("value_iteration", "policy_iteration"):
            raise ValueError(
                "DPConfig.method must be 'value_iteration' or 'policy_iteration', "
                f"got {self.method!r}"
            )
        check_counts("DPConfig", self, "max_sweeps", "max_iterations")
        if not isinstance(self.spread_ties, bool):
            raise ValueError(f"DPConfig.spread_ties must be a bool, got {self.spread_ties!r}")


@hyperparameters
class DPHParams:
    """Traced settings of a planning agent (a batch of discounts is one `vmap`).

    Attributes:
      gamma: discount factor in [0, 1]; 1 converges on an episodic world whose policies all
        end or earn nothing forever, and otherwise stops at `max_sweeps` (`converged` False).
      tol: sweeps stop once the largest change of one sweep is below this.
    """

    gamma: float = 0.9
    tol: float = 1e-6

    def validate(self) -> None:
        check_values("DPHParams", "gamma", self.gamma, low=0.0, high=1.0)
        check_values("DPHParams", "tol", self.tol, low=0.0, low_open=True)


class DPState(NamedTuple):
    params: Array  # [S, A], the greedy policy found by planning
    V: Array  # [S]
    Q: Array  # [S, A]
    hparams: DPHParams
    sweeps: Array  # shape=(), int32
    converged: Array  # shape=(), bool: stopped by `tol`, not by `max_sweeps`


def make_dp_agent(config: DPConfig, P: Array, R: Array, terminal: Array) -> Agent:
    """Dynamic programming as `Agent(init, act, update)`, so that a planner runs, is saved,
    evaluated and plotted like every learner.

    `init` solves the known model (`P [S, A, S]`, `R [S, A]`, `terminal [S]`) with value
    or policy iteration at the traced `gamma`; `act` follows the greedy policy found
    (`greedy=True`: its argmax; otherwise a sample from it); `update` learns nothing (the
    model is known), so the driver's episodes measure the policy's returns in the
    environment itself. Observations are state indices `[B]`.
    """
    S, A = _check_model(P, R, terminal)

    def init(key: Key, hparams: DPHParams, obs: Array) -> DPState:
        del key, obs
        hp = as_leaves(hparams)
        if config.method == "value_iteration":
            result = _value_iteration_jit(
                P, R, terminal, hp.gamma, hp.tol, config.max_sweeps, config.spread_ties
            )
        else:
            uniform = jnp.full((S, A), 1.0 / A, jnp.float32)
            result = _policy_iteration_jit(
                P, R, terminal, hp.gamma, hp.tol, config.max_sweeps, config.max_iterations,
                uniform, config.spread_ties,
            )  # fmt: skip
        converged = result.sweeps < config.max_sweeps * (
            1 if config.method == "value_iteration" else config.max_iterations
        )
        return DPState(result.policy, result.V, result.Q, hp, result.sweeps, converged)

    def act(state: DPState, obs: Array, key: Key, greedy: bool = False) -> Array:
        probs = state.params[obs]
        return greedy_action(probs) if greedy else sample(key, probs)

    def update(state: DPState, rollout: Transition, key: Key):
        del rollout, key
        return state, {"sweeps": state.sweeps.astype(jnp.float32)}

    return Agent(init=init, act=act, update=update)


_PLAY = TrainConfig(total_env_steps=1_000, chunk_env_steps=100, eval_episodes=8)

PRESETS: dict[str, Preset] = {
    # The lessons' discount; 1,000 steps of the greedy policy measure its return.
    "default": Preset(None, DPHParams(gamma=0.9), _PLAY),
    # The course's DP lessons (on GridWorldDP-v0: traps pay -1 but are not terminal): gamma
    # 0.9, ties spread equally (the planner's moves sample among them, as the course's
    # "move" button does). The registry sets `method` per algorithm.
    "course": Preset(DPConfig(spread_ties=True), DPHParams(gamma=0.9), _PLAY),
}


def preset(name: str) -> Preset:
    """The preset called `name`; `ValueError` lists the known names."""
    return pick_preset(PRESETS, name, "dynamic programming")
