"""The moving-ghost Pacman: the course's rules step by step (against a plain-Python
re-implementation of the course's world), ghosts, observation, rewards, limits, vmap,
params, rendering."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rljax
from rljax.envs import pacman as pm

UP, DOWN, RIGHT, LEFT, STAY = range(5)  # the course's action order
# Right along the top row, then down the right column into the strawberry.
WALK = [RIGHT] * 4 + [DOWN] * 4


class CourseWorld:
    """The course's Pacman world (rlcode/reinforcement-learning-kr, `1-grid-world/
    6-deep-sarsa/environment.py`; `7-reinforce` adds -0.1 per step), its rules written out
    in plain Python without the drawing. Positions are `[x, y]` = `[col, row]` as the course
    keeps them; a ghost's `dir` is the course's label, -1 while it moves right.

    Its step counter starts at 0 when the world is made and is never reset: the ghosts move
    on odd counts, before Pacman; then every ghost on Pacman's cell pays -1 and the
    strawberry +1 (and ends the episode)."""

    def __init__(self, step_reward: float = 0.0) -> None:
        self.counter = 0
        self.step_reward = step_reward
        self.reset()

    def reset(self) -> list[float]:
        self.agent = [0, 0]
        self.ghosts = [{"xy": [x, x + 1], "dir": -1} for x in range(3)]
        return self.state()

    def state(self) -> list[float]:
        out: list[float] = []
        for g in self.ghosts:
            out += [g["xy"][0] - self.agent[0], g["xy"][1] - self.agent[1], -1, g["dir"]]
        return [*out, 4 - self.agent[0], 4 - self.agent[1], 1]

    def step(self, action: int) -> tuple[list[float], float, bool]:
        self.counter += 1
        if self.counter % 2 == 1:
            for g in self.ghosts:
                if g["xy"][0] == 4:
                    g["dir"] = 1
                elif g["xy"][0] == 0:
                    g["dir"] = -1
                g["xy"][0] += 1 if g["dir"] == -1 else -1
        x, y = self.agent
        if action == 0 and y > 0:
            y -= 1
        elif action == 1 and y < 4:
            y += 1
        elif action == 2 and x < 4:
            x += 1
        elif action == 3 and x > 0:
            x -= 1
        self.agent = [x, y]
        reward = -1.0 * sum(g["xy"] == self.agent for g in self.ghosts)
        done = self.agent == [4, 4]
        reward += 1.0 if done else 0.0
        return self.state(), reward + self.step_reward, done


def _state(pacman, ghost_cols, ghost_dirs, time=0, clock=0):
    return pm.PacmanState(
        time=jnp.int32(time),
        clock=jnp.int32(clock),
        pacman=jnp.array(pacman, jnp.int32),
        ghost_cols=jnp.array(ghost_cols, jnp.int32),
        ghost_dirs=jnp.array(ghost_dirs, jnp.int32),
    )


@pytest.fixture(scope="module")
def env():
    return rljax.make("Pacman-v0")[0]


@pytest.fixture(scope="module")
def rollout(env):
    """`rollout(key, params, actions [T]) -> (obs, rewards, terminated, truncated,
    final_obs)`, stepping with `env.step` (auto-reset) from a fresh reset."""

    def run(key, params, actions):
        _, state = env.reset(key, params)

        def body(carry, xs):
            state, key = carry
            key, k_step = jax.random.split(key)
            obs, state, reward, terminated, truncated, info = env.step(k_step, state, xs, params)
            return (state, key), (obs, reward, terminated, truncated, info["final_observation"])

        return jax.lax.scan(body, (state, key), actions)[1]

    return jax.jit(run)


def test_registration_and_spaces(env):
    assert {"Pacman-v0", "PacmanReinforce-v0"} <= set(rljax.registered_envs())
    env2, params = rljax.make("Pacman-v0")
    assert rljax.env_spec(env2, params) == rljax.EnvSpec(obs_shape=(15,), num_actions=5)
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.dtype == jnp.float32 and obs.shape == (15,)
    assert state.pacman.tolist() == [0, 0] and state.ghost_cols.tolist() == [0, 1, 2]
    assert state.ghost_dirs.tolist() == [1, 1, 1]
    assert obs.tolist() == CourseWorld().state()
    reinforce_env, reinforce_params = rljax.make("PacmanReinforce-v0")
    assert reinforce_env.name == "PacmanReinforce-v0"
    assert float(reinforce_params.step_reward) == pytest.approx(-0.1)
    assert float(params.step_reward) == 0.0


@pytest.mark.parametrize(
    "env_id, step_reward, bias",
    [("Pacman-v0", 0.0, "uniform"), ("PacmanReinforce-v0", -0.1, "down_right")],
)
def test_every_step_equals_the_courses_world(env_id, step_reward, bias):
    """Random action sequences through episode ends (auto-reset, the step counter running
    on): observation, reward and termination equal the course's at every step."""
    env, params = rljax.make(env_id)
    rng = np.random.default_rng(0 if bias == "uniform" else 1)
    probs = [0.2] * 5 if bias == "uniform" else [0.1, 0.35, 0.35, 0.1, 0.1]
    actions = rng.choice(5, size=3_000, p=probs)

    @jax.jit
    def run(actions):
        _, state = env.reset(jax.random.key(0), params)

        def body(state, a):
            obs, state, reward, terminated, truncated, _ = env.step(
                jax.random.key(0), state, a, params
            )
            return state, (obs, reward, terminated, truncated)

        return jax.lax.scan(body, state, jnp.asarray(actions))[1]

    obs, rewards, terminated, truncated = (np.asarray(x) for x in run(actions))
    assert not truncated.any()
    course = CourseWorld(step_reward)
    for t, a in enumerate(actions):
        want_obs, want_reward, done = course.step(int(a))
        if done:
            want_obs = course.reset()  # what the course's loop does next
        assert bool(terminated[t]) == done, t
        assert rewards[t] == pytest.approx(want_reward, abs=1e-6), t
        assert obs[t].tolist() == want_obs, t
    assert terminated.sum() >= 5  # the comparison went through several episodes
    assert (rewards <= -0.9 + step_reward).any()  # and through ghost touches


@pytest.mark.parametrize(
    "period, want",
    [
        # Per ghost its column after steps 1..10 (Pacman stays at the start). With period 2
        # the ghosts move on steps 1, 3, 5, 7, 9 only; at the wall they turn back.
        (
            2,
            [
                [1, 1, 2, 2, 3, 3, 4, 4, 3, 3],
                [2, 2, 3, 3, 4, 4, 3, 3, 2, 2],
                [3, 3, 4, 4, 3, 3, 2, 2, 1, 1],
            ],
        ),
        (
            1,
            [
                [1, 2, 3, 4, 3, 2, 1, 0, 1, 2],
                [2, 3, 4, 3, 2, 1, 0, 1, 2, 3],
                [3, 4, 3, 2, 1, 0, 1, 2, 3, 4],
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
    steps = np.diff(np.array([[0, 1, 2], *np.array(want).T]), axis=0)
    moved = steps != 0
    np.testing.assert_array_equal(np.array(dirs)[moved], steps[moved])


def test_observation_layout(env):
    state = _state(pacman=(2, 1), ghost_cols=(0, 4, 2), ghost_dirs=(1, -1, -1))
    # The direction label is the course's: -1 while moving right, +1 while moving left.
    want = [-1, -1, -1, -1, 3, 0, -1, 1, 1, 1, -1, 1, 3, 2, 1]
    obs = env.get_obs(state)
    assert obs.dtype == jnp.float32 and obs.tolist() == want
    assert pm.observe(state).tolist() == want
    # Another layout: the ghost rows come from the env.
    other = pm.Pacman(ghost_rows=(3, 1, 0), ghost_cols=(0, 1, 2))
    assert other.get_obs(state).tolist()[:10:4] == [-1, 3, 1]
    assert other.get_obs(state).tolist()[1:11:4] == [1, -1, -2]


def test_walk_to_the_strawberry(env, rollout):
    params = env.default_params
    _, rewards, terminated, truncated, final_obs = rollout(
        jax.random.key(0), params, jnp.array(WALK)
    )
    # Step 6 enters (2, 4), where ghost 1 stands since step 5: -1, and the walk goes on.
    assert rewards.tolist() == [0, 0, 0, 0, 0, -1, 0, 1]
    assert terminated.tolist() == [False] * 7 + [True] and not truncated.any()
    assert final_obs[-1, -3:].tolist() == [0, 0, 1]  # Pacman on the strawberry
    # Terminal ghosts end the episode at the touch.
    _, rewards, terminated, _, _ = rollout(
        jax.random.key(0), params.replace(ghost_terminal=True), jnp.array(WALK)
    )
    assert rewards[:6].tolist() == [0, 0, 0, 0, 0, -1]
    assert terminated[:6].tolist() == [False] * 5 + [True]
    # The REINFORCE world: -0.1 on every step, also the last (1 - 0.1).
    _, rewards, *_ = rollout(jax.random.key(0), pm.REINFORCE_PARAMS, jnp.array(WALK))
    np.testing.assert_allclose(rewards, [-0.1] * 5 + [-1.1, -0.1, 0.9], atol=1e-6)


def test_touching_a_ghost(env):
    params = env.default_params
    key = jax.random.key(0)
    # Ghosts move first: Pacman (2, 1) goes right while ghost 1 at (2, 2) goes left to
    # (2, 1). They swap cells: no touch.
    state = _state(pacman=(2, 1), ghost_cols=(4, 2, 0), ghost_dirs=(1, -1, 1), clock=0)
    _, new, reward, terminated, _, _ = env.step(key, state, RIGHT, params)
    assert new.pacman.tolist() == [2, 2] and new.ghost_cols.tolist()[1] == 1
    assert float(reward) == 0.0 and not terminated
    # At an odd clock the ghosts stand still and Pacman walks into ghost 1: -1.
    state = state.replace(clock=jnp.int32(1))
    _, _, reward, terminated, _, _ = env.step(key, state, RIGHT, params)
    assert float(reward) == -1.0 and not terminated
    _, _, reward, terminated, _, _ = env.step(
        key, state, RIGHT, params.replace(ghost_terminal=True)
    )
    assert float(reward) == -1.0 and terminated
    assert env.is_terminated(
        _state((2, 2), (4, 2, 0), (1, -1, 1)), params.replace(ghost_terminal=True)
    )
    # A ghost walks into Pacman, who stays: touched.
    state = _state(pacman=(1, 3), ghost_cols=(2, 0, 0), ghost_dirs=(1, 1, 1), clock=0)
    _, _, reward, _, _, _ = env.step(key, state, STAY, params)
    assert float(reward) == -1.0
    # Pacman steps into the cell a ghost has just left: harmless; wall bumps stay put.
    state = _state(pacman=(1, 1), ghost_cols=(2, 0, 0), ghost_dirs=(1, 1, 1), clock=0)
    _, new, reward, _, _, _ = env.step(key, state, RIGHT, params)
    assert new.pacman.tolist() == [1, 2] and new.ghost_cols.tolist()[0] == 3
    assert float(reward) == 0.0
    state = _state(pacman=(0, 0), ghost_cols=(1, 2, 3), ghost_dirs=(1, -1, 1))
    _, new, reward, _, _, _ = env.step(key, state, UP, params)
    assert new.pacman.tolist() == [0, 0] and float(reward) == 0.0


def test_two_ghosts_on_pacmans_cell_pay_twice():
    env = pm.Pacman(ghost_rows=(1, 1, 3), ghost_cols=(2, 4, 2))
    params = env.default_params
    # Ghost 0 moves right to (1, 3), ghost 1 bounces from (1, 4) to (1, 3): both on Pacman.
    state = _state(pacman=(1, 3), ghost_cols=(2, 4, 2), ghost_dirs=(1, 1, 1), clock=0)
    _, new, reward, _, _, _ = env.step(jax.random.key(0), state, STAY, params)
    assert new.ghost_cols.tolist()[:2] == [3, 3] and float(reward) == -2.0


def test_the_clock_runs_on_through_episodes(env, rollout):
    params = env.default_params
    # A first episode of 9 steps (clock 9 at its end): the next episode's first step
    # starts at an odd clock, so its ghosts stand still, as in the course.
    actions = jnp.array([STAY, *WALK, RIGHT, RIGHT])
    obs, _, terminated, _, _ = rollout(jax.random.key(0), params, actions)
    assert terminated.tolist() == [False] * 8 + [True, False, False]
    reset_cols = [0, 1, 2]
    assert obs[9].tolist()[:10:4] == [c - 1 for c in reset_cols]  # Pacman (0, 1), ghosts still
    assert obs[10].tolist()[:10:4] == [c + 1 - 2 for c in reset_cols]  # then they move
    # A fresh reset starts the clock at 0 (the first step moves the ghosts).
    _, state = env.reset(jax.random.key(0), params)
    assert int(state.clock) == 0
    _, state, *_ = env.step(jax.random.key(0), state, STAY, params)
    assert state.ghost_cols.tolist() == [1, 2, 3] and int(state.clock) == 1


def test_time_limit_truncates_without_terminating(env, rollout):
    params = env.default_params.replace(max_steps_in_episode=3)
    _, rewards, terminated, truncated, final_obs = rollout(
        jax.random.key(0), params, jnp.full(4, STAY)
    )
    assert truncated.tolist() == [False, False, True, False] and not terminated.any()
    assert not rewards.any()
    # The pre-reset observation after 3 steps: ghost cols (2, 3, 4), all moving right.
    want = [2, 1, -1, -1, 3, 2, -1, -1, 4, 3, -1, -1, 4, 4, 1]
    assert final_obs[2].tolist() == want
    # After the reset the ghosts start over; the 4th step starts at clock 3: they stand.
    assert final_obs[3].tolist()[:10:4] == [0, 1, 2]


def test_jit_vmap_over_keys_and_params(env, rollout):
    params = env.default_params
    keys = jax.random.split(jax.random.key(1), 4)
    _, rewards, terminated, _, _ = jax.vmap(rollout, in_axes=(0, None, None))(
        keys, params, jnp.array(WALK)
    )
    assert rewards.shape == (4, 8) and (rewards.sum(1) == 0).all() and terminated[:, -1].all()
    batch = params.replace(
        ghost_reward=jnp.array([-1.0, -2.0, -3.0]),
        max_steps_in_episode=jnp.array([100, 6, 8]),
        goal_reward=jnp.ones(3),
        step_reward=jnp.zeros(3),
        ghost_terminal=jnp.zeros(3, bool),
        ghost_period=jnp.full(3, 2),
    )
    _, rewards, terminated, truncated, _ = jax.vmap(rollout, in_axes=(None, 0, None))(
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
        ("step_reward", float("nan")),
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
    lines = text.splitlines()
    assert "P" in text and "S" in text and text.count("G") == 3
    assert lines[0].startswith("P") and lines[1].startswith("G") and lines[4].endswith("S")
    assert "g0> g1> g2>" in lines[5]
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
