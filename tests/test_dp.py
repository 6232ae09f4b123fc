"""Dynamic programming: policy evaluation against a linear solve, policy and value iteration
on the GridWorld, vmap over discounts, input checks."""

from __future__ import annotations

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rljax
from rljax import dp
from rljax.envs import gridworld as gw

# (stay_action, traps_terminal): the control setting with 4 and 5 actions, and the
# prediction setting in which traps only pay -1.
SETTINGS = [(False, True), (True, True), (False, False), (True, False)]


@pytest.fixture(scope="module", params=SETTINGS, ids=lambda p: f"stay={p[0]}-traps={p[1]}")
def model(request):
    stay_action, traps_terminal = request.param
    env = gw.GridWorld(stay_action=stay_action)
    params = env.default_params.replace(traps_terminal=traps_terminal)
    return env, params, gw.transition_model(env, params)


def _solve_linear(P, R, terminal, policy, gamma):
    """`V = (I - gamma P_pi)^-1 R_pi` on the non-terminal states, `V = 0` on terminal ones."""
    P, R, policy = (np.asarray(x, np.float64) for x in (P, R, policy))
    live = ~np.asarray(terminal)
    P_pi = np.einsum("sa,sat->st", policy, P)[np.ix_(live, live)]
    R_pi = (policy * R).sum(-1)[live]
    V = np.zeros(len(live))
    V[live] = np.linalg.solve(np.eye(live.sum()) - gamma * P_pi, R_pi)
    return V


def _min_safe_path_length():
    """Breadth-first search on the 5x5 grid from the start to the goal, never entering a
    trap: the fewest moves of a trap-free path."""
    traps = {(1, 2), (2, 1)}
    start, goal = (0, 0), (2, 2)
    dist = {start: 0}
    queue = collections.deque([start])
    while queue:
        r, c = queue.popleft()
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nxt = (r + dr, c + dc)
            if 0 <= nxt[0] < 5 and 0 <= nxt[1] < 5 and nxt not in traps and nxt not in dist:
                dist[nxt] = dist[(r, c)] + 1
                queue.append(nxt)
    return dist[goal]


def _greedy_walk(env, params, policy, max_steps=50):
    """Follow `argmax policy` from the start with the environment's own `step`: the states
    visited (start included) and whether the walk reached the goal."""
    _, state = env.reset(jax.random.key(0), params)
    visited = [int(state.pos)]
    action = np.asarray(policy).argmax(-1)
    for t in range(max_steps):
        _, state, _, terminated, _, info = env.step(
            jax.random.key(t), state, int(action[visited[-1]]), params
        )
        visited.append(int(info["final_observation"]))
        if bool(terminated):
            return visited, visited[-1] == gw.GOAL
    return visited, False


@pytest.mark.parametrize("gamma", [0.5, 0.9])
def test_policy_evaluation_of_the_random_policy_solves_the_linear_system(model, gamma):
    env, _, (P, R, terminal) = model
    uniform = jnp.full((gw.NUM_STATES, env.num_actions), 1.0 / env.num_actions)
    V, sweeps = dp.policy_evaluation(P, R, terminal, uniform, gamma, tol=1e-7)
    assert 0 < int(sweeps) < 10_000
    np.testing.assert_allclose(V, _solve_linear(P, R, terminal, uniform, gamma), atol=1e-5)


def test_value_iteration_by_hand():
    # Two states, gamma 0.9: in state 0, action 0 pays 1 and stays (worth 1 / (1 - 0.9) =
    # 10), action 1 pays 5 and ends in the terminal state 1 (worth 5).
    P = np.zeros((2, 2, 2), np.float32)
    P[0, 0, 0] = P[0, 1, 1] = P[1, :, 1] = 1.0
    R = np.array([[1.0, 5.0], [0.0, 0.0]], np.float32)
    terminal = np.array([False, True])
    for result in (
        dp.value_iteration(P, R, terminal, 0.9, tol=1e-7),
        dp.policy_iteration(P, R, terminal, 0.9, tol=1e-7),
    ):
        np.testing.assert_allclose(result.V, [10.0, 0.0], atol=1e-4)
        np.testing.assert_allclose(result.Q, [[10.0, 5.0], [0.0, 0.0]], atol=1e-4)
        np.testing.assert_array_equal(result.policy[0], [1.0, 0.0])
    # With gamma 0.5 staying is worth 2 < 5: leave at once.
    result = dp.value_iteration(P, R, terminal, 0.5)
    np.testing.assert_allclose(result.V, [5.0, 0.0], atol=1e-5)
    np.testing.assert_array_equal(result.policy[0], [0.0, 1.0])


def test_terminal_states_are_worth_zero_whatever_the_model_says():
    P = np.zeros((2, 1, 2), np.float32)
    P[:, 0, 0] = 1.0  # the "terminal" state 1 leads back to 0, paying 3
    R = np.array([[1.0], [3.0]], np.float32)
    result = dp.value_iteration(P, R, np.array([False, True]), 0.5)
    np.testing.assert_allclose(result.V, [2.0, 0.0], atol=1e-5)


def test_value_and_policy_iteration_agree_on_the_optimum(model):
    env, params, (P, R, terminal) = model
    vi = dp.value_iteration(P, R, terminal, 0.9)
    pi = dp.policy_iteration(P, R, terminal, 0.9)
    np.testing.assert_allclose(vi.V, pi.V, atol=1e-4)
    assert int(pi.iterations) < 20 and int(vi.sweeps) < 100
    # The shortest trap-free path has 6 moves, so V*(start) = 0.9 ** 5 (reward on the 6th).
    n = _min_safe_path_length()
    assert n == 6
    np.testing.assert_allclose(vi.V[gw.START], 0.9 ** (n - 1), atol=1e-5)
    # Both policies take only optimal actions (near-ties may be broken either way).
    Q = np.asarray(vi.Q)
    for result in (vi, pi):
        chosen = Q[np.arange(gw.NUM_STATES), np.asarray(result.policy).argmax(-1)]
        assert (chosen >= Q.max(-1) - 1e-4).all()
        np.testing.assert_array_equal(result.policy.sum(-1), 1.0)
        visited, reached = _greedy_walk(env, params, result.policy)
        assert reached and len(visited) - 1 == n, visited
        assert not set(visited) & set(gw.TRAPS), visited


def test_policy_iteration_from_an_optimal_policy_stops_at_once(model):
    _, _, (P, R, terminal) = model
    vi = dp.value_iteration(P, R, terminal, 0.9)
    pi = dp.policy_iteration(P, R, terminal, 0.9, policy=vi.policy)
    assert int(pi.iterations) == 1
    np.testing.assert_allclose(pi.V, vi.V, atol=1e-4)


GAMMAS = [0.0, 0.5, 0.9, 0.99]


@pytest.fixture(scope="module")
def control_model():
    env, params = rljax.make("GridWorld-v0")
    return gw.transition_model(env, params)


@pytest.mark.parametrize("solver", ["value_iteration", "policy_iteration", "policy_evaluation"])
def test_vmap_over_discounts_matches_separate_calls(control_model, solver):
    P, R, terminal = control_model
    uniform = jnp.full((25, 4), 0.25)
    if solver == "policy_evaluation":
        fn = lambda gamma: dp.policy_evaluation(P, R, terminal, uniform, gamma)  # noqa: E731
    else:
        fn = lambda gamma: getattr(dp, solver)(P, R, terminal, gamma)  # noqa: E731
    batched = jax.jit(jax.vmap(fn))(jnp.array(GAMMAS))
    for i, gamma in enumerate(GAMMAS):
        single = fn(gamma)
        for got, want in zip(jax.tree.leaves(batched), jax.tree.leaves(single), strict=True):
            np.testing.assert_allclose(got[i], want, atol=1e-5)


def test_q_from_v_and_greedy_policy():
    P = np.zeros((1, 3, 2), np.float32)
    P[0, :, 1] = 1.0
    R = np.array([[0.0, 1.0, 1.0]], np.float32)
    Q = dp.q_from_v(P, R, jnp.array([0.0, 2.0]), 0.5)
    np.testing.assert_allclose(Q, [[1.0, 2.0, 2.0]])
    np.testing.assert_array_equal(dp.greedy_policy(Q), [[0.0, 1.0, 0.0]])  # tie: lowest index
    # The course's rule: the tied actions share the probability; a tolerance absorbs the
    # evaluation's rounding, and nothing outside it is counted as tied.
    np.testing.assert_array_equal(dp.greedy_policy(Q, tie_tol=0.0), [[0.0, 0.5, 0.5]])
    near = jnp.array([[1.0, 2.0, 2.0 - 1e-7, 1.99]])
    np.testing.assert_allclose(dp.greedy_policy(near, tie_tol=1e-6), [[0.0, 0.5, 0.5, 0.0]])
    policy, _ = dp.policy_improvement(P, R, jnp.array([0.0, 2.0]), 0.5, spread_ties=True)
    np.testing.assert_array_equal(policy, [[0.0, 0.5, 0.5]])


def test_spread_ties_planner_samples_among_ties():
    """`DPConfig(spread_ties=True)` on the course's DP world: the planner's policy at the
    start is down/right 0.5/0.5, its moves sample among them, greedy takes the lowest."""
    env, params = rljax.make("GridWorldDP-v0")
    P, R, terminal = gw.transition_model(env, params)
    for method in ("value_iteration", "policy_iteration"):
        agent = dp.make_dp_agent(dp.DPConfig(method, spread_ties=True), P, R, terminal)
        state = agent.init(jax.random.key(0), dp.DPHParams(gamma=0.9), jnp.zeros((1,), jnp.int32))
        np.testing.assert_allclose(state.params[gw.START], [0.0, 0.5, 0.0, 0.5], atol=1e-6)
        obs = jnp.zeros((512,), jnp.int32)
        moves = np.asarray(agent.act(state, obs, jax.random.key(1)))
        assert set(moves.tolist()) == {1, 3} and 0.4 < np.mean(moves == 1) < 0.6
        assert int(agent.act(state, obs[:1], jax.random.key(1), greedy=True)[0]) == 1
    with pytest.raises(ValueError, match="spread_ties must be a bool"):
        dp.DPConfig(spread_ties=1)


def test_gamma_one_converges_on_the_episodic_world(control_model):
    # Terminal goal and traps, rewards only on entering them: undiscounted values are
    # finite. The optimal start value is the goal's +1 (a path around the traps exists).
    P, R, terminal = control_model
    vi = dp.value_iteration(P, R, terminal, 1.0)
    assert int(vi.sweeps) < 100 and float(vi.V[0]) == pytest.approx(1.0)
    pi = dp.policy_iteration(P, R, terminal, 1.0)
    np.testing.assert_allclose(pi.V, vi.V, atol=1e-4)


@pytest.mark.parametrize("gamma", [-0.1, 1.5, float("nan")])
def test_bad_gamma_is_refused(control_model, gamma):
    P, R, terminal = control_model
    uniform = jnp.full((25, 4), 0.25)
    for call in (
        lambda: dp.value_iteration(P, R, terminal, gamma),
        lambda: dp.policy_iteration(P, R, terminal, gamma),
        lambda: dp.policy_evaluation(P, R, terminal, uniform, gamma),
    ):
        with pytest.raises(ValueError, match="gamma"):
            call()


def test_bad_policy_and_model_are_refused(control_model):
    P, R, terminal = control_model
    with pytest.raises(ValueError, match=r"policy must have shape \[S, A\] = \(25, 4\)"):
        dp.policy_evaluation(P, R, terminal, jnp.full((25, 5), 0.2), 0.9)
    with pytest.raises(ValueError, match=r"policy rows must be probabilities.*row 0"):
        dp.policy_evaluation(P, R, terminal, jnp.full((25, 4), 0.3), 0.9)
    with pytest.raises(ValueError, match="policy rows"):
        dp.policy_iteration(P, R, terminal, 0.9, policy=-jnp.full((25, 4), 0.25))
    with pytest.raises(ValueError, match=r"P must have shape \[S, A, S\]"):
        dp.value_iteration(P[:, :, :5], R, terminal, 0.9)
    with pytest.raises(ValueError, match=r"R must have shape"):
        dp.value_iteration(P, R[:, :2], terminal, 0.9)
    with pytest.raises(ValueError, match=r"terminal must have shape"):
        dp.value_iteration(P, R, terminal[:3], 0.9)
    with pytest.raises(ValueError, match=r"P\[s, a, :\] must be probability distributions"):
        dp.value_iteration(2.0 * P, R, terminal, 0.9)
    with pytest.raises(ValueError, match=r"dp\.tol"):
        dp.value_iteration(P, R, terminal, 0.9, tol=0.0)
    with pytest.raises(ValueError, match=r"dp\.max_sweeps"):
        dp.policy_evaluation(P, R, terminal, jnp.full((25, 4), 0.25), 0.9, max_sweeps=0)


def test_public_functions_jit_with_traced_inputs(control_model):
    P, R, terminal = control_model
    eager = dp.value_iteration(P, R, terminal, 0.9)
    jitted = jax.jit(dp.value_iteration)(P, R, terminal, jnp.float32(0.9))
    np.testing.assert_allclose(jitted.V, eager.V, atol=1e-6)


def test_new_discounts_do_not_recompile(control_model):
    P, R, terminal = control_model
    dp.value_iteration(P, R, terminal, 0.8)
    compiled = dp._value_iteration_jit._cache_size()
    for gamma in (0.81, 0.85, 0.9):
        result = dp.value_iteration(P, R, terminal, gamma)
    assert dp._value_iteration_jit._cache_size() == compiled
    assert result.V.shape == (25,) and result.Q.shape == (25, 4) and result.policy.shape == (25, 4)
    assert result.V.dtype == jnp.float32 and result.sweeps.dtype == jnp.int32
