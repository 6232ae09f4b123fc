"""JAX's own debugging switches work on every algorithm: a short training of each under
`jax_debug_nans` (no NaN placeholder on the device) and `jax_debug_key_reuse` (every key
used once), through the run-folder path the command line uses."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import rljax
from rljax.run import registry


def _small(name: str) -> dict[str, str]:
    if name in ("a2c", "a3c"):
        return {"total_env_steps": "256", "chunk_env_steps": "128", "hidden_sizes": "8"}
    if name == "reinforce":
        return {"total_env_steps": "200", "chunk_env_steps": "100", "num_envs": "2",
                "rollout_len": "50", "hidden_sizes": "8"}  # fmt: skip
    if name in ("dqn", "deep_sarsa"):
        return {"total_env_steps": "64", "chunk_env_steps": "32", "hidden_sizes": "8"}
    return {"total_env_steps": "64", "chunk_env_steps": "32"}


@pytest.mark.parametrize("name", sorted(registry.ALGOS))
def test_trains_under_debug_nans_and_key_reuse(name):
    overrides = _small(name)
    if "learning_starts" in registry.settable(name):
        overrides["learning_starts"] = "16"  # so that DQN takes gradient steps
    if name != "dqn":
        # The stopping rule (a while_loop, and greedy evaluation inside the chunk for DQN's
        # preset) is the driver's, the same for every agent: DQN's run covers it; the others
        # compile without it, in a fraction of the time.
        overrides["stop_return"] = "none"
    exp = registry.make_experiment(name, None, "default", overrides)
    keys = jax.random.split(jax.random.key(0), 2)
    hparams = rljax.tile_hparams(exp.hparams, 2)
    train = jax.vmap(rljax.make_train(exp.agent, exp.env, exp.env_params, exp.train_config))
    with jax.debug_nans(True), jax.debug_key_reuse(True):
        out = jax.jit(train)(keys, hparams)
        metrics = rljax.host_metrics(out.metrics)
    assert np.all(metrics["env_steps"][:, -1] > 0)
    assert np.all(np.isfinite(np.asarray(out.eval_returns)))


def test_the_switches_are_on():
    # The test above would pass vacuously if the context managers did nothing.
    with jax.debug_nans(True), pytest.raises(FloatingPointError):
        jax.block_until_ready(jax.jit(lambda x: x / x)(np.float32(0.0)))
    key = jax.random.key(0)

    def reuse(k):
        return jax.random.uniform(k) + jax.random.uniform(k)

    with jax.debug_key_reuse(True), pytest.raises(jax.errors.KeyReuseError):
        jax.jit(reuse)(key)
