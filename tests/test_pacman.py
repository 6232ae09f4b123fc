"""The moving-ghost Pacman: ghosts, observation, rewards, limits, vmap, params, rendering."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rljax
from rljax.envs import pacman as pm

STAY, UP, DOWN, LEFT, RIGHT = range(5)
# Right along the top row, then down the right column into the strawberry.
WALK = [RIGHT] * 4 + [DOWN] * 4


def _state(pacman, ghost_cols, ghost_dirs, time=0):
    return pm.PacmanState(
        time=jnp.int32(time),
        pacman=jnp.array(pacman, jnp.int32),
        ghost_cols=jnp.array(ghost_cols, jnp.int32),
        ghost_dirs=jnp.array(ghost_dirs, jnp.int32),
    )


@pytest.fixture(scope="module")
def env():
    return rljax.make("Pacman-v0")[0]


@pytest.fixture(scope="module")
def rollout(env):
    """`rollout(key, params, actions [T]) -> (rewards, terminated, truncated, final_obs)`."""

    def run(key, params, actions):
        _, state = env.reset(key, params)

        def body(carry, xs):
            state, key = carry
            key, k_step = jax.random.split(key)
            _, state, reward, terminated, truncated, info = env.step(k_step, state, xs, params)
            return (state, key), (reward, terminated, truncated, info["final_observation"])

        return jax.lax.scan(body, (state, key), actions)[1]

    return jax.jit(run)


def test_registration_and_spaces(env):
    assert "Pacman-v0" in rljax.registered_envs()
    env2, params = rljax.make("Pacman-v0")
    assert rljax.env_spec(env2, params) == rljax.EnvSpec(obs_shape=(15,), num_actions=5)
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.dtype == jnp.float32 and obs.shape == (15,)
    assert state.pacman.tolist() == [0, 0] and state.ghost_cols.tolist() == [1, 2, 3]
    assert state.ghost_dirs.tolist() == [1, -1, 1]


@pytest.mark.parametrize(
    "period, want",
    [
        # Per ghost its column after steps 1..10. With period 2 the ghosts move after steps
        # 1, 3, 5, 7, 9 only; at the walls they turn back.
        (
            2,
            [
                [2, 2, 3, 3, 4, 4, 3, 3, 2, 2],
                [1, 1, 0, 0, 1, 1, 2, 2, 3, 3],
                [4, 4, 3, 3, 2, 2, 1, 1, 0, 0],
            ],
        ),
        (
            1,
            [
                [2, 3, 4, 3, 2, 1, 0, 1, 2, 3],
                [1, 0, 1, 2, 3, 4, 3, 2, 1, 0],
                [4, 3, 2, 1, 0, 1, 2, 3, 4, 3],
            ],
        ),
    ],
)
def test_ghosts_bounce_and_move_every_period(env, period, want):
    params = env.default_params.replace(ghost_period=period)
    _, state = env.reset(jax.random.key(0), params)
    cols, dirs = [], []
    for t in range(10):
        _, state, reward, terminated, truncated, _ = env.step(
            jax.random.key(t), state, STAY, params
        )
        assert float(reward) == 0.0 and not terminated and not truncated
        cols.append(state.ghost_cols.tolist())
        dirs.append(state.ghost_dirs.tolist())
    assert np.array(cols).T.tolist() == want
    # A ghost's direction is the one it last moved in: flips only on a bounce.
    steps = np.diff(np.array([[1, 2, 3], *np.array(want).T]), axis=0)
    moved = steps != 0
    np.testing.assert_array_equal(np.array(dirs)[moved], steps[moved])


def test_observation_layout(env):
    state = _state(pacman=(2, 1), ghost_cols=(0, 4, 2), ghost_dirs=(1, -1, -1))
    want = [-1, -1, -1, 1, 3, 0, -1, -1, 1, 1, -1, -1, 3, 2, 1]
    obs = env.get_obs(state)
    assert obs.dtype == jnp.float32 and obs.tolist() == want
    assert pm.observe(state).tolist() == want
    # Another layout: the ghost rows come from the env.
    other = pm.Pacman(ghost_rows=(3, 1, 0), ghost_cols=(0, 1, 2))
    assert other.get_obs(state).tolist()[:10:4] == [-1, 3, 1]
    assert other.get_obs(state).tolist()[1:11:4] == [1, -1, -2]


def test_walk_to_the_strawberry(env, rollout):
    params = env.default_params
    rewards, terminated, truncated, final_obs = rollout(jax.random.key(0), params, jnp.array(WALK))
    # Step 5 enters (1, 4) just as ghost 0 arrives there: -1, but the walk goes on.
    assert rewards.tolist() == [0, 0, 0, 0, -1, 0, 0, 1]
    assert terminated.tolist() == [False] * 7 + [True] and not truncated.any()
    assert final_obs[-1, -3:].tolist() == [0, 0, 1]  # Pacman on the strawberry
    # Terminal ghosts end the episode at the touch.
    rewards, terminated, _, _ = rollout(
        jax.random.key(0), params.replace(ghost_terminal=True), jnp.array(WALK)
    )
    assert rewards[:5].tolist() == [0, 0, 0, 0, -1]
    assert terminated[:5].tolist() == [False] * 4 + [True]


def test_touching_a_ghost(env):
    params = env.default_params
    key = jax.random.key(0)
    # Swap: Pacman (2, 1) goes right while ghost 1 at (2, 2) goes left (they move at t=0).
    state = _state(pacman=(2, 1), ghost_cols=(4, 2, 0), ghost_dirs=(1, -1, 1), time=0)
    _, new, reward, terminated, _, _ = env.step(key, state, RIGHT, params)
    assert new.pacman.tolist() == [2, 2] and new.ghost_cols.tolist()[1] == 1
    assert float(reward) == -1.0 and not terminated
    # Same cell: at t=1 the ghosts stand still and Pacman walks into ghost 1.
    state = state.replace(time=jnp.int32(1))
    _, _, reward, terminated, _, _ = env.step(key, state, RIGHT, params)
    assert float(reward) == -1.0 and not terminated
    _, _, reward, terminated, _, _ = env.step(
        key, state, RIGHT, params.replace(ghost_terminal=True)
    )
    assert float(reward) == -1.0 and terminated
    assert env.is_terminated(
        _state((2, 2), (4, 2, 0), (1, -1, 1)), params.replace(ghost_terminal=True)
    )
    # A ghost walks into Pacman, who stays: touched too.
    state = _state(pacman=(1, 3), ghost_cols=(2, 0, 0), ghost_dirs=(1, 1, 1), time=0)
    _, _, reward, _, _, _ = env.step(key, state, STAY, params)
    assert float(reward) == -1.0
    # Passing next to a ghost (no swap, no shared cell) is harmless; wall bumps stay put.
    state = _state(pacman=(0, 0), ghost_cols=(1, 2, 3), ghost_dirs=(1, -1, 1))
    _, new, reward, _, _, _ = env.step(key, state, UP, params)
    assert new.pacman.tolist() == [0, 0] and float(reward) == 0.0


def test_goal_takes_precedence_over_a_ghost():
    env = pm.Pacman(ghost_rows=(1, 2, 4), ghost_cols=(1, 2, 1))
    params = env.default_params.replace(ghost_terminal=True, goal_reward=2.0)
    # Pacman (4, 3) -> goal while ghost 2 bounces from (4, 4) to (4, 3): a swap, but +2.
    state = _state(pacman=(4, 3), ghost_cols=(1, 2, 4), ghost_dirs=(1, -1, 1), time=0)
    obs, _, reward, terminated, _, info = env.step(jax.random.key(0), state, RIGHT, params)
    assert float(reward) == 2.0 and terminated
    assert info["final_observation"][-3:].tolist() == [0, 0, 1]
    assert obs.tolist() == env.get_obs(env.initial_state()).tolist()  # auto-reset


def test_time_limit_truncates_without_terminating(env, rollout):
    params = env.default_params.replace(max_steps_in_episode=3)
    rewards, terminated, truncated, final_obs = rollout(
        jax.random.key(0), params, jnp.full(4, STAY)
    )
    assert truncated.tolist() == [False, False, True, False] and not terminated.any()
    assert not rewards.any()
    # The pre-reset observation at t=3: ghost cols (3, 0, 3), dirs (+1, -1, -1).
    want = [3, 1, -1, 1, 0, 2, -1, -1, 3, 3, -1, -1, 4, 4, 1]
    assert final_obs[2].tolist() == want
    # After the reset the ghosts start over: t=1 has them at (2, 1, 4).
    assert final_obs[3].tolist()[:10:4] == [2, 1, 4]


def test_jit_vmap_over_keys_and_params(env, rollout):
    params = env.default_params
    keys = jax.random.split(jax.random.key(1), 4)
    rewards, terminated, _, _ = jax.vmap(rollout, in_axes=(0, None, None))(
        keys, params, jnp.array(WALK)
    )
    assert rewards.shape == (4, 8) and (rewards.sum(1) == 0).all() and terminated[:, -1].all()
    batch = params.replace(
        ghost_reward=jnp.array([-1.0, -2.0, -3.0]),
        max_steps_in_episode=jnp.array([100, 6, 8]),
        goal_reward=jnp.ones(3),
        ghost_terminal=jnp.zeros(3, bool),
        ghost_period=jnp.full(3, 2),
    )
    rewards, terminated, truncated, _ = jax.vmap(rollout, in_axes=(None, 0, None))(
        jax.random.key(0), batch, jnp.array(WALK)
    )
    # 0: -1 + 1; 1: -2, truncated at step 6 (then restarts safely); 2: -3 + 1 at step 8.
    assert rewards.sum(1).tolist() == [0.0, -2.0, -2.0]
    assert terminated[:, -1].tolist() == [True, False, True]
    assert truncated.any(1).tolist() == [False, True, True]
    assert truncated[1].tolist() == [False] * 5 + [True, False, False]


@pytest.mark.parametrize(
    "field, value",
    [
        ("max_steps_in_episode", 0),
        ("ghost_period", 0),
        ("ghost_period", 1.5),
        ("ghost_terminal", 2.0),
        ("ghost_terminal", -0.5),
        ("ghost_reward", None),
    ],
)
def test_bad_params_are_refused(field, value):
    with pytest.raises(ValueError, match=rf"PacmanParams\.{field}"):
        pm.PacmanParams(**{field: value})


@pytest.mark.parametrize(
    "rows, cols, name",
    [
        ((1, 2), (1, 2, 3), "ghost_rows"),
        ((1, 2, 3), (1, 2, 5), "ghost_cols"),
        ((1, 2, 3), "abc", "ghost_cols"),
        ((0, 2, 3), (0, 2, 3), "ghost_rows"),  # a ghost on the start
        ((1, 2, 4), (1, 2, 4), "ghost_rows"),  # a ghost on the goal
    ],
)
def test_bad_layout_is_refused(rows, cols, name):
    with pytest.raises(ValueError, match=rf"unknown ghost layout.*{name}"):
        pm.Pacman(ghost_rows=rows, ghost_cols=cols)


def test_render_ascii(env):
    _, state = env.reset(jax.random.key(0), env.default_params)
    text = env.render_ascii(state)
    assert "P" in text and "S" in text and text.count("G") == 3
    assert text.splitlines()[0].startswith("P") and text.splitlines()[4].endswith("S")
    on_ghost = pm.render_ascii(_state((1, 1), (1, 2, 3), (1, -1, 1)))
    assert "X" in on_ghost and "P" not in on_ghost


def test_render_episode_writes_files(env, tmp_path):
    params = env.default_params
    _, state = env.reset(jax.random.key(0), params)
    states = [state]
    for t, a in enumerate(WALK[:5]):
        _, state, *_ = env.step(jax.random.key(t), state, a, params)
        states.append(state)
    png = env.render_episode(states, tmp_path / "walk.png", title="walk")
    assert png == tmp_path / "walk.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
    pytest.importorskip("PIL")
    gif = pm.render_episode(stacked, tmp_path / "walk.gif")
    assert gif == tmp_path / "walk.gif" and gif.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
