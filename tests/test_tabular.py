"""Tabular agents on hand-worked numbers: targets, SARSA's next action, Monte-Carlo returns."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rljax
from rljax import tabular


def _rollout(obs, action, reward, discount, next_obs, done):
    """A `[T, 1]` rollout from per-step lists."""
    col = lambda x, dt: jnp.asarray(x, dt)[:, None]  # noqa: E731
    return rljax.Transition(
        obs=col(obs, jnp.int32),
        action=col(action, jnp.int32),
        reward=col(reward, jnp.float32),
        discount=col(discount, jnp.float32),
        next_obs=col(next_obs, jnp.int32),
        done=col(done, bool),
    )


def test_sarsa_uses_the_next_action_taken_across_rollouts():
    config = tabular.TabularConfig(num_states=2, num_actions=2)
    agent = tabular.make_sarsa(config)
    hp = tabular.TabularHParams(learning_rate=0.5, gamma=0.9)
    state = agent.init(jax.random.key(0), hp, jnp.zeros((1,), jnp.int32))
    key = jax.random.key(1)
    # Rollout 1: s0 -a1-> s1 (r=1), s1 -a0-> s0 (r=0). Only the first is applied: its next
    # action is a0 at s1, Q(s1, a0) = 0, so Q(s0, a1) = 0.5 * (1 + 0.9 * 0) = 0.5.
    state, _ = agent.update(state, _rollout([0, 1], [1, 0], [1, 0], [1, 1], [1, 0], [0, 0]), key)
    np.testing.assert_allclose(state.params, [[0.0, 0.5], [0.0, 0.0]])
    # Rollout 2: s0 -a1-> terminal (r=2). The waiting s1 -a0-> s0 transition now learns its
    # next action a1 (the first action of rollout 2): Q(s1, a0) = 0.5 * (0 + 0.9 * 0.5).
    state, _ = agent.update(state, _rollout([0], [1], [2], [0], [0], [1]), key)
    np.testing.assert_allclose(state.params, [[0.0, 0.5], [0.225, 0.0]])
    # Rollout 3 applies the terminal transition: no bootstrap, Q(s0, a1) += 0.5 * (2 - 0.5).
    state, _ = agent.update(state, _rollout([1], [1], [0], [1], [1], [0]), key)
    np.testing.assert_allclose(state.params, [[0.0, 1.25], [0.225, 0.0]])


def test_sarsa_differs_from_q_learning_when_next_action_is_not_greedy():
    config = tabular.TabularConfig(num_states=2, num_actions=2)
    hp = tabular.TabularHParams(learning_rate=1.0, gamma=0.5, init_value=0.0)
    key = jax.random.key(0)
    sarsa, qlearn = tabular.make_sarsa(config), tabular.make_q_learning(config)
    s_state = sarsa.init(key, hp, jnp.zeros((1,), jnp.int32))
    q_state = qlearn.init(key, hp, jnp.zeros((1,), jnp.int32))
    table = jnp.array([[0.0, 0.0], [4.0, 8.0]])  # at s1 the greedy action is a1
    s_state, q_state = s_state._replace(params=table), q_state._replace(params=table)
    # s0 -a0-> s1 (r=1), then the exploratory a0 at s1.
    roll = _rollout([0, 1], [0, 0], [1, 0], [1, 1], [1, 0], [0, 0])
    s_state, _ = sarsa.update(s_state, roll, key)
    assert float(s_state.params[0, 0]) == pytest.approx(1 + 0.5 * 4.0)  # the action taken
    q_state, _ = qlearn.update(q_state, jax.tree.map(lambda x: x[:1], roll), key)
    assert float(q_state.params[0, 0]) == pytest.approx(1 + 0.5 * 8.0)  # the max


# One rollout [4, 1] with a truncation in its middle (hand-built, five states):
#   t0: s0 -a1-> s1, r = 1              the next action taken is a0 (t1)
#   t1: s1 -a0-> s2, r = 0, truncated   the episode ends; the next rollout row is a new one
#   t2: s3 -a0-> s4, r = 2, terminated  (the new episode, whose first action is a0)
#   t3: s0 -a1-> s1                     waits for its next action (the next rollout)
MID_TRUNCATION = dict(
    obs=[0, 1, 3, 0], action=[1, 0, 0, 1], reward=[1, 0, 2, 0], discount=[1, 1, 0, 1],
    next_obs=[1, 2, 4, 1], done=[0, 1, 1, 0],
)  # fmt: skip
Q_START = [[0, 0], [2, 5], [-4, 3], [0, 0], [0, 0]]  # Q(s1) = [2, 5], Q(s2) = [-4, 3]


def _update_once(agent, hp):
    state = agent.init(jax.random.key(0), hp, jnp.zeros((1,), jnp.int32))
    state = state._replace(params=jnp.array(Q_START, jnp.float32))
    state, _ = agent.update(state, _rollout(**MID_TRUNCATION), jax.random.key(1))
    return np.asarray(state.params)


def test_sarsa_at_a_truncation_draws_the_next_action_from_the_policy():
    # Guards: the next episode's first action (t2's a0) used as the truncated transition's
    # next action. alpha = 0.5, gamma = 0.5, epsilon = 0 (the policy is greedy), by hand:
    #   t0: Q(s0, a1) = 0 + 0.5 * (1 + 0.5 * Q(s1, a0) - 0) = 0.5 * (1 + 1) = 1
    #   t1: the greedy action at s2 is a1: Q(s1, a0) = 2 + 0.5 * (0 + 0.5 * 3 - 2) = 1.75
    #       (with t2's a0 instead: 2 + 0.5 * (0.5 * -4 - 2) = 0)
    #   t2: terminal, no bootstrap: Q(s3, a0) = 0 + 0.5 * (2 - 0) = 1
    hp = tabular.TabularHParams(learning_rate=0.5, gamma=0.5, epsilon=0.0)
    q = _update_once(tabular.make_sarsa(tabular.TabularConfig(5, 2)), hp)
    np.testing.assert_allclose(q, [[0, 1], [1.75, 5], [-4, 3], [1, 0], [0, 0]])


def test_expected_sarsa_takes_the_expectation_under_epsilon_greedy():
    # Guards: greedy probabilities (Q-learning) or uniform ones in Expected SARSA's target.
    # epsilon = 0.4 over 2 actions: the greedy action has 0.8, the other 0.2. By hand:
    #   t0: E Q(s1, .) = 0.2 * 2 + 0.8 * 5 = 4.4: Q(s0, a1) = 0.5 * (1 + 0.5 * 4.4) = 1.6
    #       (greedy: 0.5 * (1 + 2.5) = 1.75; uniform: 0.5 * (1 + 1.75) = 1.375)
    #   t1: a truncation bootstraps: E Q(s2, .) = 0.2 * -4 + 0.8 * 3 = 1.6,
    #       Q(s1, a0) = 2 + 0.5 * (0.5 * 1.6 - 2) = 1.4
    #   t2: terminal: Q(s3, a0) = 1
    hp = tabular.TabularHParams(learning_rate=0.5, gamma=0.5, epsilon=0.4)
    q = _update_once(tabular.make_sarsa(tabular.TabularConfig(5, 2), expected=True), hp)
    np.testing.assert_allclose(q, [[0, 1.6], [1.4, 5], [-4, 3], [1, 0], [0, 0]], rtol=1e-6)


def _episode_in_two_rollouts(agent, hp):
    # s0 (r=1) -> s1 (r=0) -> s0 (r=2) -> terminal. gamma = 0.5:
    # G_0 = 1 + 0.5 * 0 + 0.25 * 2 = 1.5, G_1 = 0 + 0.5 * 2 = 1.0, G_2 = 2.
    state = agent.init(jax.random.key(0), hp, jnp.zeros((1,), jnp.int32))
    key = jax.random.key(1)
    state, _ = agent.update(state, _rollout([0, 1], [0, 0], [1, 0], [1, 1], [1, 0], [0, 0]), key)
    np.testing.assert_array_equal(state.params, 0.0)  # nothing learned before the episode ends
    state, _ = agent.update(state, _rollout([0], [0], [2], [0], [2], [1]), key)
    return np.asarray(state.params)


def test_first_visit_monte_carlo_hand_worked():
    config = tabular.TabularConfig(num_states=3, num_actions=1)
    agent = tabular.make_mc_prediction(config, first_visit=True)
    v = _episode_in_two_rollouts(agent, tabular.TabularHParams(learning_rate=1.0, gamma=0.5))
    np.testing.assert_allclose(v, [1.5, 1.0, 0.0])


def test_every_visit_monte_carlo_hand_worked():
    config = tabular.TabularConfig(num_states=3, num_actions=1)
    agent = tabular.make_mc_prediction(config, first_visit=False)
    v = _episode_in_two_rollouts(agent, tabular.TabularHParams(learning_rate=0.5, gamma=0.5))
    # V(s0) = 0.5 * ((1.5 - 0) + (2 - 0)), V(s1) = 0.5 * 1.0
    np.testing.assert_allclose(v, [1.75, 0.5, 0.0])


def test_monte_carlo_bootstraps_a_truncated_episode():
    config = tabular.TabularConfig(num_states=2, num_actions=1)
    agent = tabular.make_mc_prediction(config)
    hp = tabular.TabularHParams(learning_rate=1.0, gamma=0.5, init_value=4.0)
    state = agent.init(jax.random.key(0), hp, jnp.zeros((1,), jnp.int32))
    # s0 -r=1-> s1, cut by the time limit: G_0 = 1 + 0.5 * V(s1) = 3.
    state, _ = agent.update(state, _rollout([0], [0], [1], [1], [1], [1]), jax.random.key(1))
    np.testing.assert_allclose(state.params, [3.0, 4.0])


def test_td_prediction_hand_worked():
    config = tabular.TabularConfig(num_states=2, num_actions=2)
    agent = tabular.make_td_prediction(config)
    hp = tabular.TabularHParams(learning_rate=0.5, gamma=0.9, init_value=1.0)
    state = agent.init(jax.random.key(0), hp, jnp.zeros((1,), jnp.int32))
    state, _ = agent.update(state, _rollout([0, 1], [0, 0], [1, 0], [1, 0], [1, 0], [0, 1]), None)
    # V(s0) = 1 + 0.5 * (1 + 0.9 * 1 - 1) = 1.45; then V(s1) = 1 + 0.5 * (0 - 1) = 0.5
    np.testing.assert_allclose(state.params, [1.45, 0.5])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": 1.5}, "learning_rate"),
        ({"gamma": -0.1}, "gamma"),
        ({"epsilon": 2.0}, r"epsilon must lie in \[0.0, 1.0\], got 2"),
    ],
)
def test_bad_hparams(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tabular.TabularHParams(**kwargs)


def test_bad_policy():
    config = tabular.TabularConfig(num_states=2, num_actions=2)
    with pytest.raises(ValueError, match=r"shape \[S, A\] = \(2, 2\), got \(2, 3\)"):
        tabular.make_td_prediction(config, jnp.ones((2, 3)) / 3)
    with pytest.raises(ValueError, match="summing to one"):
        tabular.make_mc_prediction(config, jnp.array([[0.5, 0.6], [0.5, 0.5]]))


def test_per_environment_state_is_sized_by_the_first_observations():
    # No config repeats num_envs: MC's traces and SARSA's pending transitions take their
    # batch size from the observations init receives, and the driver runs them at B = 3.
    env, params = rljax.make("GridWorld-v0")
    config = tabular.TabularConfig.for_env(env, params)
    train_config = rljax.TrainConfig(total_env_steps=60, num_envs=3, chunk_env_steps=60)
    for agent in (tabular.make_mc_prediction(config), tabular.make_sarsa(config)):
        state = agent.init(jax.random.key(0), tabular.TabularHParams(), jnp.zeros((3,), jnp.int32))
        leaves = state.trace if hasattr(state, "trace") else state.pending.transition.action
        assert leaves.shape[0] == 3
        train = rljax.make_train(agent, env, params, train_config)
        out = jax.jit(train)(jax.random.key(1), tabular.TabularHParams())
        assert int(out.state.env_steps) == 60
