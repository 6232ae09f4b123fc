"""DQN actually solves CartPole-v1 with its default preset, on several fixed seeds."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import rljax
from rljax import dqn

SEEDS = 4


@pytest.mark.slow
def test_default_preset_solves_cartpole_on_every_seed():
    p = dqn.preset("default")
    env, params = rljax.make("CartPole-v1")
    agent = dqn.make_dqn(p.config, rljax.env_spec(env, params))
    train = jax.jit(jax.vmap(rljax.make_train(agent, env, params, p.train_config)))
    out = train(jax.random.split(jax.random.key(2026), SEEDS), rljax.tile_hparams(p.hparams, SEEDS))
    greedy = np.asarray(out.eval_returns).mean(axis=1)  # 32 greedy episodes per seed
    assert (greedy >= 475).all(), greedy
    # Every seed met the stopping rule (last 20 training episodes average above 490)...
    stop = np.asarray(out.state.stop_step)
    assert (stop > 0).all() and (stop <= p.train_config.total_env_steps).all(), stop
    # ...after a learning curve that rose from random play (about 22 steps per episode).
    for returns in rljax.host_metrics(out.metrics)["episode_return_mean"]:
        ran = returns[~np.isnan(returns)]
        assert ran[:2].mean() < 60 and ran[-4:].mean() > 400, ran
