"""The 5x5 GridWorld: registration, dynamics against `transition_model`, rendering."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest

import rljax
from rljax.envs import gridworld as gw


def _step_all(env, params):
    """Step every (state, action) pair once from a constructed state: jitted and vmapped."""
    S, A = gw.NUM_STATES, env.num_actions
    pos = jnp.repeat(jnp.arange(S, dtype=jnp.int32), A)
    act = jnp.tile(jnp.arange(A, dtype=jnp.int32), S)
    state = gw.GridWorldState(time=jnp.zeros(S * A, jnp.int32), pos=pos)
    keys = jax.random.split(jax.random.key(0), S * A)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    obs, _, reward, terminated, truncated, info = step(keys, state, act, params)
    reshape = lambda x: np.asarray(x).reshape(S, A, *np.shape(x)[1:])  # noqa: E731
    return (
        reshape(info["final_observation"]),
        reshape(reward),
        reshape(terminated),
        reshape(truncated),
        reshape(obs),
    )


# The lessons' world, written out: start S (0, 0), goal G (2, 2) paying +1 and always
# terminal, traps T (1, 2) and (2, 1) paying -1 (terminal when `traps_terminal`). Rewards
# are paid on entering a cell; a move into the outer wall leaves the agent in place with 0;
# the stay action (4) stays with 0; a terminal cell is absorbing with 0.
LAYOUT = """
S . . . .
. . T . .
. T G . .
. . . . .
. . . . .
"""
MOVES = [(-1, 0), (1, 0), (0, -1), (0, 1), (0, 0)]  # up, down, left, right, stay
ENTER = {"G": 1.0, "T": -1.0}


def _layout_model(num_actions, traps_terminal):
    """From `LAYOUT` alone: next state `[S, A]`, reward `[S, A]`, terminal cells `[S]`."""
    cells = [row.split() for row in LAYOUT.strip().splitlines()]
    terminal = np.array([k == "G" or (k == "T" and traps_terminal) for row in cells for k in row])
    next_state = np.zeros((25, num_actions), int)
    reward = np.zeros((25, num_actions))
    for row, col, a in itertools.product(range(5), range(5), range(num_actions)):
        s = row * 5 + col
        r2, c2 = row + MOVES[a][0], col + MOVES[a][1]
        if terminal[s] or not (0 <= r2 < 5 and 0 <= c2 < 5):
            r2, c2 = row, col  # absorbing, or a bump into the wall
        next_state[s, a] = r2 * 5 + c2
        if (r2, c2) != (row, col):
            reward[s, a] = ENTER.get(cells[r2][c2], 0.0)
    return next_state, reward, terminal


@pytest.mark.parametrize(
    "stay_action, one_hot, traps_terminal", list(itertools.product([False, True], repeat=3))
)
def test_every_step_follows_the_written_layout(stay_action, one_hot, traps_terminal):
    env = gw.GridWorld(stay_action=stay_action, one_hot=one_hot)
    params = env.default_params.replace(traps_terminal=bool(traps_terminal))
    S, A = gw.NUM_STATES, 5 if stay_action else 4
    want_next, want_reward, want_terminal = _layout_model(A, traps_terminal)
    # The environment's step, from every (state, action).
    final_obs, reward, terminated, truncated, obs = _step_all(env, params)
    assert final_obs.shape == ((S, A, S) if one_hot else (S, A))
    next_state = final_obs.argmax(-1) if one_hot else final_obs
    np.testing.assert_array_equal(next_state, want_next)
    np.testing.assert_array_equal(reward, want_reward)
    np.testing.assert_array_equal(terminated, want_terminal[want_next])
    assert not truncated.any()
    # The episode ends exactly on entering a terminal cell, and auto-resets to the start.
    start = np.eye(S)[0] if one_hot else 0
    np.testing.assert_array_equal(obs[terminated], np.broadcast_to(start, obs[terminated].shape))
    # The exact model used by dynamic programming says the same.
    P, R, terminal = (np.asarray(x) for x in gw.transition_model(env, params))
    np.testing.assert_array_equal(P, np.eye(S, dtype=np.float32)[want_next])
    np.testing.assert_array_equal(R, want_reward)
    np.testing.assert_array_equal(terminal, want_terminal)


def test_layout_rewards_and_termination():
    env, params = rljax.make("GridWorld-v0")
    P, R, terminal = gw.transition_model(env, params)
    idx = lambda r, c: r * 5 + c  # noqa: E731
    up, down, left, right = range(4)
    assert float(R[idx(2, 3), left]) == 1.0  # into the goal
    assert float(R[idx(0, 2), down]) == -1.0  # into the trap (1, 2)
    assert float(R[idx(2, 0), right]) == -1.0  # into the trap (2, 1)
    assert float(R[idx(0, 0), up]) == 0.0 and float(P[0, up, 0]) == 1.0  # a bump pays 0
    assert np.flatnonzero(terminal).tolist() == sorted([gw.GOAL, *gw.TRAPS])
    _, _, prediction_terminal = gw.transition_model(env, params.replace(traps_terminal=False))
    assert np.flatnonzero(prediction_terminal).tolist() == [gw.GOAL]
    # In the prediction setting a bump inside a trap pays 0: reward is for entering only.
    _, R0, _ = gw.transition_model(env, params.replace(traps_terminal=False))
    assert float(R0[idx(1, 2), up]) == 0.0 and float(R0[idx(1, 2), down]) == 1.0
    assert float(R0[idx(2, 1), down]) == 0.0 and float(R0[idx(1, 1), right]) == -1.0


def test_registration_and_spaces():
    assert {"GridWorld-v0", "GridWorld5-v0"} <= set(rljax.registered_envs())
    env, params = rljax.make("GridWorld-v0")
    assert rljax.env_spec(env, params) == rljax.EnvSpec(obs_shape=(), num_actions=4)
    env5, params5 = rljax.make("GridWorld5-v0")
    assert rljax.env_spec(env5, params5) == rljax.EnvSpec(obs_shape=(), num_actions=5)
    one_hot = gw.GridWorld(one_hot=True)
    assert rljax.env_spec(one_hot, params).obs_shape == (25,)
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.dtype == jnp.int32 and obs.shape == () and int(obs) == 0 and int(state.pos) == 0
    obs, _ = one_hot.reset(jax.random.key(0), params)
    assert obs.dtype == jnp.float32 and obs.shape == (25,) and float(obs[0]) == 1.0


def test_time_limit_truncates_without_terminating():
    env, params = rljax.make("GridWorld-v0")
    params = params.replace(max_steps_in_episode=3)
    _, state = env.reset(jax.random.key(0), params)
    flags = []
    for t in range(3):  # bump into the top wall: never terminates
        _, state, reward, terminated, truncated, _ = env.step(jax.random.key(t), state, 0, params)
        flags.append((bool(terminated), bool(truncated), float(reward)))
    assert flags == [(False, False, 0.0), (False, False, 0.0), (False, True, 0.0)]
    assert int(state.time) == 0  # auto-reset after the truncation


def test_transition_model_vmaps_over_params():
    env, params = rljax.make("GridWorld5-v0")
    goal = jnp.array([1.0, 2.0, 5.0])
    trap_terminal = jnp.array([True, False, True])
    batch = params.replace(
        goal_reward=goal,
        trap_reward=-goal,
        traps_terminal=trap_terminal,
        max_steps_in_episode=jnp.full(3, 100),
    )
    P, R, terminal = jax.jit(jax.vmap(gw.transition_model, in_axes=(None, 0)), static_argnums=0)(
        env, batch
    )
    for i in range(3):
        one = params.replace(
            goal_reward=float(goal[i]),
            trap_reward=-float(goal[i]),
            traps_terminal=bool(trap_terminal[i]),
        )
        for got, want in zip((P[i], R[i], terminal[i]), gw.transition_model(env, one), strict=True):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "field, value", [("traps_terminal", 2.0), ("max_steps_in_episode", 0), ("goal_reward", None)]
)
def test_bad_params_are_refused(field, value):
    with pytest.raises(ValueError, match=rf"GridWorldParams\.{field}"):
        gw.GridWorldParams(**{field: value})


def test_render_ascii_marks_goal_traps_and_arrows():
    text = gw.render_ascii()
    assert text.count("G") == 1 and text.count("T") == 2 and text.count("S") == 1
    policy = np.zeros((25, 4))
    policy[:, 3] = 1.0  # always right
    V = np.linspace(-1.0, 1.0, 25)
    text = gw.render_ascii(V, policy)
    assert text.count(">") == 22  # every cell but the goal and the two traps
    assert "+1.000" in text and "-1.000" in text
    lines = text.splitlines()
    assert len(lines) == 11 and len({len(line) for line in lines}) == 1
    # Actions as indices work too; ties in probabilities show every tied action.
    assert "^v<>" in gw.render_ascii(policy=np.full((25, 4), 0.25))
    assert gw.render_ascii(policy=np.full(25, 1)).count("v") == 22


def test_render_values_writes_a_png(tmp_path):
    path = tmp_path / "values.png"
    policy = np.full((25, 5), 0.2)
    fig = gw.render_values(np.arange(25.0) / 25, policy, path=path, title="uniform")
    try:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert fig.axes[0].get_title() == "uniform"
    finally:
        plt.close(fig)
