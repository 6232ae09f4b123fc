"""DQN: target on hand-worked numbers, exploration, bad input, learning on probe MDPs."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rljax
from rljax import dqn, exploration


def test_epsilon_schedule_and_greedy_sampling():
    hp = dqn.DQNHParams(epsilon=1.0, epsilon_end=0.1, epsilon_decay=0.5)
    hp = jax.tree.map(jnp.float32, hp)
    eps = [float(exploration.epsilon_at(hp, jnp.int32(n))) for n in (0, 1, 2, 10)]
    assert eps == pytest.approx([1.0, 0.5, 0.25, 0.1])
    q = jnp.tile(jnp.array([[0.0, 1.0, 0.0]]), (4_000, 1))
    greedy_share = float(jnp.mean(exploration.epsilon_greedy(jax.random.key(0), q, 0.3) == 1))
    # 70% greedy plus a third of the 30% random picks.
    assert greedy_share == pytest.approx(0.7 + 0.3 / 3, abs=0.03)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("learning_rate", 0.0, r"learning_rate must lie in \(0"),
        ("learning_rate", -1e-3, "learning_rate"),
        ("gamma", 1.5, r"gamma must lie in \[0.0, 1.0\], got 1.5"),
        ("epsilon_end", -0.1, "epsilon_end"),
        ("tau", 0.0, "tau"),
        ("learning_starts", 10.5, "whole number"),
        ("max_grad_norm", float("nan"), "max_grad_norm must not be NaN"),
    ],
)
def test_bad_hparams_name_field_and_value(field, value, message):
    with pytest.raises(ValueError, match=message):
        dqn.DQNHParams(**{field: value})


def test_bad_hparams_in_a_batch_are_caught():
    with pytest.raises(ValueError, match=r"gamma.*got -0.5"):
        dqn.DQNHParams(gamma=np.array([0.9, -0.5, 0.99]))


def test_bad_config_names_field_and_value():
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        dqn.DQNConfig(batch_size=0)
    with pytest.raises(
        ValueError, match=r"batch_size=128 is larger than DQNConfig\.buffer_size=100"
    ):
        dqn.DQNConfig(batch_size=128, buffer_size=100)
    with pytest.raises(ValueError, match="kernel_init"):
        dqn.DQNConfig(kernel_init="glorot_magic")
    with pytest.raises(ValueError, match="unknown DQN preset 'fast'"):
        dqn.preset("fast")


def test_lecture_preset_matches_the_course():
    p = dqn.preset("lecture")
    assert p.config.hidden_sizes == (24, 24) and p.config.kernel_init == "he_uniform"
    assert (p.config.buffer_size, p.config.batch_size, p.config.gradient_steps) == (2_000, 64, 1)
    hp = p.hparams
    assert (hp.learning_rate, hp.gamma, hp.epsilon_decay, hp.epsilon_end) == (
        1e-3,
        0.99,
        0.999,
        0.01,
    )
    assert (hp.learning_starts, hp.huber, hp.double_dqn, hp.terminal_reward) == (1000, 0, 0, -100)
    assert hp.target_update_on_done == 1.0 and hp.target_update_period == 0.0
    assert math.isinf(hp.max_grad_norm)
    assert (p.train_config.num_envs, p.train_config.rollout_len) == (1, 1)
    assert (p.train_config.stop_return, p.train_config.stop_window) == (490.0, 10)


def _train_probe(env_id, hparams, steps=3_000):
    env, params = rljax.make(env_id)
    config = dqn.DQNConfig(hidden_sizes=(32,), buffer_size=1_000, batch_size=32)
    agent = dqn.make_dqn(config, rljax.env_spec(env, params))
    tc = rljax.TrainConfig(
        total_env_steps=steps, num_envs=4, chunk_env_steps=steps, eval_episodes=4
    )
    train = jax.jit(jax.vmap(rljax.make_train(agent, env, params, tc)))
    out = train(jax.random.split(jax.random.key(0), 3), rljax.tile_hparams(hparams, 3))
    net = rljax.nets.MLP((32,), 2)
    q = jax.vmap(net.apply, in_axes=(0, None))(
        out.state.agent.params, jnp.array([[1.0], [-1.0], [0.0]])
    )
    return out, np.asarray(q)  # q: [seed, obs, action]


# A uniformly random behaviour policy (epsilon stays 1): off-policy Q-learning still learns
# the exact values of both actions.
PROBE_HP = dqn.DQNHParams(
    learning_rate=3e-3, learning_starts=100.0, target_update_period=20.0, epsilon_decay=1.0
)


def test_dqn_learns_the_bandit_probe():
    out, q = _train_probe("Probe-Bandit-v0", dataclasses.replace(PROBE_HP, gamma=0.9))
    # Exact values: Q(+1, 1) = Q(-1, 0) = 1, the wrong actions 0 (terminal, no bootstrap).
    np.testing.assert_allclose(q[:, 0, 1], 1.0, atol=0.1)
    np.testing.assert_allclose(q[:, 0, 0], 0.0, atol=0.1)
    np.testing.assert_allclose(q[:, 1, 0], 1.0, atol=0.1)
    np.testing.assert_allclose(q[:, 1, 1], 0.0, atol=0.1)
    np.testing.assert_array_equal(out.eval_returns, 1.0)


def test_dqn_bootstraps_through_truncation():
    hp = dataclasses.replace(PROBE_HP, gamma=0.8, learning_rate=1e-2, target_update_period=10.0)
    _, q = _train_probe("Probe-Truncation-v0", hp, 6_000)
    # 1 / (1 - 0.8) = 5; treating the 5-step limit as termination would give ~2.78.
    np.testing.assert_allclose(q[:, 2, :], 5.0, atol=0.4)


def test_terminal_reward_replaces_reward_on_termination_only():
    env, params = rljax.make("Probe-Bandit-v0")
    agent = dqn.make_dqn(
        dqn.DQNConfig(hidden_sizes=(4,), buffer_size=8, batch_size=2), rljax.env_spec(env, params)
    )
    state = agent.init(jax.random.key(0), dqn.DQNHParams(terminal_reward=-100.0), jnp.zeros((1, 1)))
    rollout = rljax.Transition(
        obs=jnp.zeros((1, 3, 1)),
        action=jnp.zeros((1, 3), jnp.int32),
        reward=jnp.array([[1.0, 1.0, 1.0]]),
        discount=jnp.array([[1.0, 0.0, 1.0]]),
        next_obs=jnp.zeros((1, 3, 1)),
        done=jnp.array([[False, True, True]]),  # the third is a truncation
    )
    state, metrics = agent.update(state, rollout, jax.random.key(1))
    np.testing.assert_array_equal(state.buffer.data.reward[:3], [1.0, -100.0, 1.0])
    assert int(state.buffer.size) == 3
    assert np.isnan(metrics["loss"])  # learning has not started: no gradient step taken
    assert int(state.gradient_steps) == 0
