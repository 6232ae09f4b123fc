"""The training driver: transitions, episode statistics, stopping, reproducibility, vmap."""

from __future__ import annotations

import dataclasses
import operator

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_recorder

import rljax
from rljax import dqn


def _recorder_run(env_id, num_envs, rollout_len, total, log, **kw):
    env, params = rljax.make(env_id)
    agent = make_recorder(rollout_len, num_envs, rljax.env_spec(env, params).obs_shape)
    config = rljax.TrainConfig(
        total_env_steps=total,
        num_envs=num_envs,
        rollout_len=rollout_len,
        chunk_env_steps=log,
        eval_episodes=3,
        **kw,
    )
    train = jax.jit(rljax.make_train(agent, env, params, config))
    return train(jax.random.key(0), None)


def test_truncation_bootstraps_and_keeps_final_observation():
    # Probe-Truncation-v0: 5 steps of reward 1, then the time limit; never terminates.
    out = _recorder_run("Probe-Truncation-v0", num_envs=2, rollout_len=7, total=28, log=14)
    last = out.state.agent.last  # the second rollout: steps 8..14 of each environment
    np.testing.assert_array_equal(last.discount, 1.0)  # truncation is not termination
    done = np.asarray(last.done)[:, 0]
    # Environment steps 8..14: the second episode ends at step 10 (index 2 of the rollout).
    np.testing.assert_array_equal(done, [False, False, True, False, False, False, False])


def test_termination_zeroes_discount():
    out = _recorder_run("Probe-Bandit-v0", num_envs=3, rollout_len=2, total=12, log=6)
    last = out.state.agent.last
    np.testing.assert_array_equal(last.discount, 0.0)
    np.testing.assert_array_equal(last.done, True)
    # next_obs is the observation the step produced, not the reset observation after it.
    np.testing.assert_array_equal(np.asarray(last.next_obs), np.asarray(last.obs))


def test_final_observation_is_pre_reset_on_cartpole():
    out = _recorder_run("CartPole-v1", num_envs=4, rollout_len=60, total=240, log=240)
    last = out.state.agent.last
    obs, next_obs, done = map(np.asarray, (last.obs, last.next_obs, last.done))
    # Always pushing right, the pole falls within 60 steps in every environment.
    assert done.any(axis=0).all()
    t, b = np.nonzero(done)
    # After a termination the pole angle is past the threshold in next_obs...
    assert (np.abs(next_obs[t, b, 2]) > 0.2094).all()
    # ...and the following observation is a fresh reset (small state), not next_obs.
    follow = t + 1 < obs.shape[0]
    assert (np.abs(obs[t[follow] + 1, b[follow]]) <= 0.05).all()
    np.testing.assert_array_equal(np.asarray(last.discount)[t, b], 0.0)


def test_episode_statistics_count_completed_episodes_only():
    # log every 2 steps: the first two chunks complete no 5-step episode -> NaN, not 0.
    out = _recorder_run("Probe-Truncation-v0", num_envs=1, rollout_len=1, total=20, log=2)
    device = jax.tree.map(np.asarray, out.metrics)
    np.testing.assert_array_equal(device["episode_return_mean"][:2], 0.0)  # no NaN on device
    m = rljax.host_metrics(out.metrics)
    np.testing.assert_array_equal(m["env_steps"], np.arange(2, 21, 2))
    np.testing.assert_array_equal(m["episodes"], [0, 0, 1, 0, 1, 0, 0, 1, 0, 1])
    assert np.isnan(m["episode_return_mean"][:2]).all()
    assert np.isnan(m["episode_length_mean"][[0, 1, 3, 5, 6, 8]]).all()
    ended = m["episodes"] > 0
    np.testing.assert_array_equal(m["episode_return_mean"][ended], 5.0)
    np.testing.assert_array_equal(m["episode_length_mean"][ended], 5.0)
    np.testing.assert_array_equal(m["reward_sum"], 1.0)  # agent metrics: mean per update
    np.testing.assert_array_equal(out.eval_returns, 5.0)  # greedy episodes end at the limit


def test_stop_criterion_records_exact_step_and_halts_at_chunk_end():
    out = _recorder_run(
        "Probe-Truncation-v0",
        num_envs=1,
        rollout_len=1,
        total=100,
        log=4,
        stop_return=4.5,
        stop_window=3,
    )
    # The third episode completes at step 15; its chunk ends at step 16.
    assert int(out.state.stop_step) == 15
    assert int(out.state.env_steps) == 16
    steps = np.asarray(out.metrics["env_steps"])
    np.testing.assert_array_equal(steps[:4], [4, 8, 12, 16])
    np.testing.assert_array_equal(steps[4:], -1)  # chunks never run
    m = rljax.host_metrics(out.metrics)
    assert np.isnan(m["episode_return_mean"][4:]).all()
    assert np.isnan(m["reward_sum"][4:]).all() and not np.isnan(m["reward_sum"][:4]).any()


def test_greedy_stop_criterion_evaluates_at_each_chunk_end():
    # Greedy episodes of the truncation probe return 5: a threshold of 4.5 is met at the
    # end of the first chunk, one of 5.5 never.
    out = _recorder_run(
        "Probe-Truncation-v0", num_envs=1, rollout_len=1, total=20, log=4, stop_return=4.5,
        stop_on="greedy",
    )  # fmt: skip
    assert int(out.state.stop_step) == 4 and int(out.state.env_steps) == 4
    assert float(out.metrics["greedy_return"][0]) == 5.0
    assert np.isnan(rljax.host_metrics(out.metrics)["greedy_return"][1:]).all()
    out = _recorder_run(
        "Probe-Truncation-v0", num_envs=1, rollout_len=1, total=20, log=4, stop_return=5.5,
        stop_on="greedy",
    )  # fmt: skip
    assert int(out.state.stop_step) == -1 and int(out.state.env_steps) == 20
    np.testing.assert_array_equal(out.metrics["greedy_return"], 5.0)


def test_every_draw_has_its_own_key():
    """Each step's action and each update get keys of their own (`draw_key`: stream and
    step), across updates and chunks: 2 updates of 3 steps x 2 environments, actions drawn
    as 30-bit integers (the truncation probe ignores them), every draw distinct. Fails if a
    stream's step does not advance, or two streams share a key."""
    T, B = 3, 2

    def init(key, hparams, obs):
        del key, hparams, obs
        return {"draws": jnp.zeros((2, T + 1, B), jnp.int32), "n": jnp.int32(0)}

    def act(state, obs, key, greedy=False):
        del state, greedy
        return jax.random.randint(key, obs.shape[:1], 0, 2**30)

    def update(state, rollout, key):
        mine = jax.random.randint(key, (1, B), 0, 2**30)
        row = jnp.concatenate([rollout.action, mine])  # [T + 1, B]
        return {"draws": state["draws"].at[state["n"]].set(row), "n": state["n"] + 1}, {}

    env, params = rljax.make("Probe-Truncation-v0")
    config = rljax.TrainConfig(
        total_env_steps=2 * T * B, num_envs=B, rollout_len=T, chunk_env_steps=T * B,
        eval_episodes=1,
    )  # fmt: skip
    trainer = rljax.make_trainer(rljax.Agent(init, act, update), env, params, config)
    state = trainer.init(jax.random.key(0), None)
    for _ in range(2):  # two chunks: the key carries over between them
        state, _ = jax.jit(trainer.run_chunk)(state)
    draws = np.asarray(state.agent["draws"]).ravel()
    assert int(state.agent["n"]) == 2
    assert len(set(draws.tolist())) == draws.size == 2 * (T + 1) * B


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="num_envs"):
        rljax.TrainConfig(num_envs=0)
    with pytest.raises(ValueError, match="chunk_env_steps=10 must be a multiple"):
        rljax.TrainConfig(total_env_steps=100, num_envs=4, chunk_env_steps=10)
    with pytest.raises(ValueError, match="total_env_steps=105"):
        rljax.TrainConfig(total_env_steps=105, chunk_env_steps=10)
    with pytest.raises(ValueError, match="stop_return"):
        rljax.TrainConfig(stop_return=float("nan"))
    with pytest.raises(ValueError, match="stop_on must be 'train' or 'greedy', got 'eval'"):
        rljax.TrainConfig(stop_on="eval")


# --- DQN through the driver: reproducibility and vmap ------------------------------------

SMALL = rljax.TrainConfig(total_env_steps=1_200, num_envs=2, chunk_env_steps=400, eval_episodes=4)
HP = dqn.DQNHParams(learning_starts=200.0, target_update_period=50.0)


@pytest.fixture(scope="module")
def small_dqn():
    env, params = rljax.make("CartPole-v1")
    agent = dqn.make_dqn(
        dqn.DQNConfig(hidden_sizes=(16,), buffer_size=500), rljax.env_spec(env, params)
    )
    train = rljax.make_train(agent, env, params, SMALL)
    # Each compiled function may be traced once: a second trace fails the test that caused it.
    # chex counts traces by the function's source and call stack, which are the same when a
    # worker builds this fixture again (after tests of other modules): start from 0.
    chex.clear_trace_counter()
    single = chex.assert_max_traces(lambda key, hp: train(key, hp), n=1)
    batched = chex.assert_max_traces(lambda key, hp: train(key, hp), n=1)
    return jax.jit(single), jax.jit(jax.vmap(batched))


def test_output_shapes(small_dqn):
    train, _ = small_dqn
    out = train(jax.random.key(1), HP)
    assert out.eval_returns.shape == (4,)
    for name, values in out.metrics.items():
        assert values.shape == (SMALL.num_chunks,), name
    assert {"loss", "q_mean", "epsilon", "episode_return_mean"} <= set(out.metrics)
    assert out.state.obs.shape == (2, 4)
    assert int(out.state.env_steps) == SMALL.total_env_steps
    assert out.state.agent.buffer.data.obs.shape == (500, 4)


def test_same_key_same_result_different_keys_differ(small_dqn):
    train, _ = small_dqn
    a = train(jax.random.key(3), HP)
    b = train(jax.random.key(3), HP)
    c = train(jax.random.key(4), HP)
    chex.assert_trees_all_equal(a, b)
    assert not np.array_equal(
        a.state.agent.params["params"]["Dense_0"]["kernel"],
        c.state.agent.params["params"]["Dense_0"]["kernel"],
    )


def test_vmapped_seed_equals_unbatched_run(small_dqn):
    train, vtrain = small_dqn
    keys = jax.random.split(jax.random.key(7), 3)
    lrs = jnp.array([1e-3, 3e-3, 1e-2])
    hps = dataclasses.replace(rljax.tile_hparams(HP, 3), learning_rate=lrs)
    batched = vtrain(keys, hps)
    for i in range(3):
        single = train(keys[i], dataclasses.replace(HP, learning_rate=float(lrs[i])))
        chex.assert_trees_all_close(
            jax.tree.map(operator.itemgetter(i), batched.state.agent.params),
            single.state.agent.params,
            rtol=1e-4,
            atol=1e-5,
        )
        np.testing.assert_array_equal(batched.metrics["episodes"][i], single.metrics["episodes"])
    # The three learning rates really gave three different runs.
    kernels = batched.state.agent.params["params"]["Dense_0"]["kernel"]
    assert not np.allclose(kernels[0], kernels[1])


def test_no_retracing_across_calls(small_dqn):
    train, vtrain = small_dqn
    # New keys and new hyperparameter values reuse the compiled program (max one trace each).
    for seed in range(3):
        train(jax.random.key(seed), dataclasses.replace(HP, gamma=0.9 + 0.01 * seed))
    keys = jax.random.split(jax.random.key(0), 3)
    vtrain(keys, rljax.tile_hparams(HP, 3))
    vtrain(keys, rljax.tile_hparams(dataclasses.replace(HP, learning_rate=5e-4), 3))


def test_greedy_episode_records_one_episode_and_freezes_after_it():
    env, params = rljax.make("Probe-Truncation-v0")  # 5 steps of reward 1, then the limit
    agent = make_recorder(1, 1, rljax.env_spec(env, params).obs_shape)
    agent_state = agent.init(jax.random.key(0), None, jnp.zeros((1,)))
    states, rewards, length = jax.jit(
        lambda s, k: rljax.greedy_episode(agent, env, params, s, k, 8)
    )(agent_state, jax.random.key(1))
    assert int(length) == 5
    np.testing.assert_array_equal(rewards, [1, 1, 1, 1, 1, 0, 0, 0])
    # States before each step, then the final state (time 5), frozen (no auto-reset).
    np.testing.assert_array_equal(states.time, [0, 1, 2, 3, 4, 5, 5, 5, 5])


def test_tile_hparams_stacks_on_the_host_with_plain_dtypes():
    compiles: list = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, *a, **k: (
            compiles.append(name) if name.endswith("backend_compile_duration") else None
        )
    )
    hp = dqn.DQNHParams(learning_rate=3e-4, huber=False)
    tiled = rljax.tile_hparams(hp, 3)
    assert compiles == []  # no program per leaf shape: a warm start pays for each
    assert tiled.learning_rate.dtype == jnp.float32 and not tiled.learning_rate.weak_type
    assert tiled.huber.dtype == jnp.bool_ and tiled.huber.shape == (3,)
    np.testing.assert_array_equal(np.asarray(tiled.learning_rate), np.float32([3e-4] * 3))
    # Batches built from Python numbers and from arrays are the same program's inputs.
    again = rljax.tile_hparams(jax.tree.map(jnp.asarray, hp), 3)
    for a, b in zip(jax.tree.leaves(tiled), jax.tree.leaves(again), strict=True):
        assert (a.dtype, a.shape, a.weak_type) == (b.dtype, b.shape, b.weak_type)


def test_the_greedy_check_is_keyed_by_the_chunks_last_step():
    # `train_chunk` hands the check the `STREAM_EVAL` draw at the step the chunk ended on,
    # not the one it began on; `greedy_stop` stops on a mean above the threshold, records
    # the step, and blanks the metric of a run stopped before the chunk. (Planted: keying
    # by the first step, or not blanking, fails this.)
    from rljax.core.keys import STREAM_EVAL, draw_key
    from rljax.run import registry

    over = {"total_env_steps": "200", "chunk_env_steps": "100", "stop_return": "0.5",
            "stop_on": "greedy", "eval_episodes": "2"}  # fmt: skip
    exp = registry.make_experiment("q_learning", "GridWorld-v0", "default", over)
    trainer = exp.trainer
    state = trainer.init(jax.random.key(0), exp.hparams)
    new, row, k_eval = jax.jit(trainer.train_chunk)(state)
    assert int(new.env_steps) == 100 and "greedy_return" not in row
    expected = draw_key(state.key, STREAM_EVAL, new.env_steps)
    np.testing.assert_array_equal(jax.random.key_data(k_eval), jax.random.key_data(expected))
    returns = jnp.array([1.0, 0.5])
    stopped, step, greedy = trainer.greedy_stop(jnp.bool_(False), jnp.int32(-1), 100, returns)
    assert bool(stopped) and int(step) == 100 and float(greedy) == 0.75
    stopped, step, greedy = trainer.greedy_stop(jnp.bool_(True), jnp.int32(40), 100, returns)
    assert bool(stopped) and int(step) == 40 and float(greedy) == 0.0
