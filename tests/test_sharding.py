"""Runs spread across 4 (forced) CPU devices give the single-device results."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import pytest

from rljax.run.sharding import runs_sharding, shard_runs

# Runs in a fresh interpreter: the device count is fixed when JAX starts.
SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np, rljax
    from rljax.run import loop, registry

    assert len(jax.devices()) == 4, jax.devices()
    over = {"total_env_steps": "2000", "chunk_env_steps": "1000"}
    exp = registry.make_experiment("q_learning", "GridWorld-v0", "default", over)
    keys = jax.random.split(jax.random.key(0), 8)
    hps = rljax.tile_hparams(exp.hparams, 8)
    one = loop.run_batch(exp.trainer, keys, hps, devices=jax.devices()[:1])
    four = loop.run_batch(exp.trainer, keys, hps, devices=jax.devices())
    assert len(four.state.env_steps.sharding.device_set) == 4
    assert len(one.state.env_steps.sharding.device_set) == 1
    np.testing.assert_allclose(four.eval_returns, one.eval_returns)
    for a, b in zip(jax.tree.leaves(four.state.agent.params),
                    jax.tree.leaves(one.state.agent.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)

    # A neural agent with a stopping rule: seeds stop at different chunks, on any device.
    over = {
        "total_env_steps": "1600", "chunk_env_steps": "80", "num_envs": "4",
        "rollout_len": "2", "hidden_sizes": "8", "learning_rate": "0.01",
        "stop_return": "0.9", "stop_on": "train", "stop_window": "8", "eval_episodes": "2",
    }
    exp = registry.make_experiment("a2c", "Probe-Bandit-v0", "default", over)
    hps = rljax.tile_hparams(exp.hparams, 8)
    one = loop.run_batch(exp.trainer, keys, hps, devices=jax.devices()[:1])
    four = loop.run_batch(exp.trainer, keys, hps, devices=jax.devices())
    stop = np.asarray(one.state.stop_step)
    assert (stop > 0).all() and len(set(stop.tolist())) > 1, stop
    np.testing.assert_array_equal(np.asarray(four.state.stop_step), stop)
    np.testing.assert_array_equal(np.asarray(four.state.env_steps), np.asarray(one.state.env_steps))
    for a, b in zip(jax.tree.leaves(four.state.agent.params),
                    jax.tree.leaves(one.state.agent.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    print("sharded ok")
    """
)


def test_runs_sharded_across_four_devices_match_one_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sharded ok" in done.stdout


def test_uneven_split_is_an_error_naming_the_counts():
    devices = jax.devices() * 3  # the error is about counts; placement never happens
    with pytest.raises(ValueError, match="4 runs cannot be split evenly across 3 devices"):
        runs_sharding(4, devices)
    with pytest.raises(ValueError, match="same leading"):
        shard_runs({"a": jax.numpy.zeros(4), "b": jax.numpy.zeros(3)})
