"""Sampling methods on the GridWorld, checked against dynamic programming's exact values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rljax
from rljax import dp, tabular
from rljax.envs.gridworld import GOAL, START, TRAPS, GridWorldParams, transition_model

SEEDS = 256
GAMMA = 0.9


def _train(agent, env, params, hparams, steps, seeds=SEEDS):
    config = rljax.TrainConfig(total_env_steps=steps, chunk_env_steps=steps, eval_episodes=1)
    train = jax.jit(jax.vmap(rljax.make_train(agent, env, params, config)))
    keys = jax.random.split(jax.random.key(4), seeds)
    return train(keys, rljax.tile_hparams(hparams, seeds))


@pytest.fixture(scope="module")
def prediction_setting():
    """The lessons' prediction setting: traps pay -1 but do not end the walk."""
    env, _ = rljax.make("GridWorld-v0")
    params = GridWorldParams(traps_terminal=False, max_steps_in_episode=200)
    P, R, terminal = transition_model(env, params)
    uniform = jnp.full((25, 4), 0.25)
    v_exact, _ = dp.policy_evaluation(P, R, terminal, uniform, GAMMA)
    return env, params, np.asarray(v_exact)


@pytest.mark.parametrize(
    ("name", "make", "lr", "tol"),
    [
        ("td0", lambda cfg: tabular.make_td_prediction(cfg), 0.05, 0.03),
        ("mc_first", lambda cfg: tabular.make_mc_prediction(cfg, first_visit=True), 0.02, 0.05),
        ("mc_every", lambda cfg: tabular.make_mc_prediction(cfg, first_visit=False), 0.02, 0.05),
    ],
)
def test_prediction_matches_dp_values(prediction_setting, name, make, lr, tol):
    env, params, v_exact = prediction_setting
    agent = make(tabular.TabularConfig.for_env(env, params))
    out = _train(agent, env, params, tabular.TabularHParams(learning_rate=lr, gamma=GAMMA), 20_000)
    v_mean = np.asarray(out.state.agent.params).mean(axis=0)  # average over 256 seeds
    err = np.abs(v_mean - v_exact)
    assert err.max() < tol, (name, err.round(3).reshape(5, 5))
    # The values are far from trivial: the tolerance is small against their spread.
    assert np.ptp(v_exact) > 10 * tol


def _greedy_path(q: np.ndarray, P: np.ndarray, limit: int = 25) -> list[int]:
    s, path = START, [START]
    for _ in range(limit):
        s = int(np.argmax(P[s, int(np.argmax(q[s]))]))
        path.append(s)
        if s == GOAL or s in TRAPS:
            break
    return path


@pytest.mark.parametrize(
    "make",
    [
        lambda cfg: tabular.make_q_learning(cfg),
        lambda cfg: tabular.make_sarsa(cfg),
        lambda cfg: tabular.make_sarsa(cfg, expected=True),
    ],
    ids=["q_learning", "sarsa", "expected_sarsa"],
)
def test_control_learns_the_optimal_path(make):
    env, params = rljax.make("GridWorld-v0")
    P = np.asarray(transition_model(env, params)[0])
    agent = make(tabular.TabularConfig.for_env(env, params))
    # Optimistic initial values and exploration that fades to zero (GLIE): on-policy SARSA
    # otherwise keeps the values it learned while exploring next to the traps.
    hp = tabular.TabularHParams(
        learning_rate=0.05, gamma=GAMMA, epsilon=0.3, epsilon_decay=0.9998, init_value=2.0
    )
    out = _train(agent, env, params, hp, 40_000)
    q = np.asarray(out.state.agent.params)
    # The shortest trap-free path is 6 moves (both cells beside the goal on the way are traps).
    optimal = [len(p) - 1 == 6 and p[-1] == GOAL for p in (_greedy_path(qi, P) for qi in q)]
    assert np.mean(optimal) >= 0.95, np.mean(optimal)
    # Its value is the DP optimum gamma^5 (the reward comes on the sixth move).
    np.testing.assert_allclose(np.median(q[:, START].max(-1)), GAMMA**5, atol=0.03)
