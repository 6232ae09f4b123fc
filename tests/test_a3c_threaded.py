"""A3C with real threads: one thread is A2C; K threads apply K gradients per round each."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import rljax
from rljax import a2c, a3c
from rljax.algos.a3c_threaded import train_threaded
from rljax.core import TrainConfig, make_trainer

N, T, ROUNDS = 4, 8, 6
CONFIG = a3c.A3CConfig(hidden_sizes=(16,), num_learners=1)


@pytest.fixture(scope="module")
def cartpole():
    return rljax.make("CartPole-v1")


def test_one_thread_is_a2c(cartpole):
    env, params = cartpole
    key = jax.random.key(3)
    result = train_threaded(
        CONFIG, env, params, a3c.A3CHParams(learning_rate=3e-3), key,
        envs_per_learner=N, rollout_len=T, rounds_per_learner=ROUNDS,
    )  # fmt: skip
    agent = a2c.make_a2c(a2c.A2CConfig(hidden_sizes=(16,)), rljax.env_spec(env, params))
    train = TrainConfig(
        total_env_steps=N * T * ROUNDS, num_envs=N, rollout_len=T, chunk_env_steps=N * T
    )
    trainer = make_trainer(agent, env, params, train)
    state = trainer.init(jax.random.split(key, 1)[0], a2c.A2CHParams(learning_rate=3e-3))
    run_chunk = jax.jit(trainer.run_chunk)
    for _ in range(ROUNDS):
        state, _ = run_chunk(state)
    jax.tree.map(
        lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6),
        result.params,
        state.agent.params,
    )
    assert result.optimizer_steps == ROUNDS
    np.testing.assert_array_equal(result.staleness, 0)


def test_threads_each_apply_every_round(cartpole):
    env, params = cartpole
    K = 3
    result = train_threaded(
        a3c.A3CConfig(hidden_sizes=(16,), num_learners=K), env, params,
        a3c.A3CHParams(learning_rate=3e-3, sync_every=2.0), jax.random.key(0),
        envs_per_learner=N, rollout_len=T, rounds_per_learner=ROUNDS,
    )  # fmt: skip
    assert result.optimizer_steps == K * ROUNDS
    np.testing.assert_array_equal(np.bincount(result.learner_of_step), [ROUNDS] * K)
    # Every gradient is at least as old as the steps its own learner applied since its
    # copy: with sync_every = 2, a learner's second round uses a copy from before its own
    # first step, so some staleness is at least 1 whatever the interleaving.
    assert result.staleness.min() >= 0 and result.staleness.max() >= 1
    assert all(len(r) == ROUNDS for r in result.episode_returns)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(result.params))


def test_bad_counts_are_named(cartpole):
    env, params = cartpole
    with pytest.raises(ValueError, match="rounds_per_learner must be an integer >= 1, got 0"):
        train_threaded(
            CONFIG, env, params, a3c.A3CHParams(), jax.random.key(0),
            envs_per_learner=1, rollout_len=1, rounds_per_learner=0,
        )  # fmt: skip
