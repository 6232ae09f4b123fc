"""Deep SARSA: the target uses the next action taken (its learning on the Pacman grid:
tests/test_course.py, the course preset)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import rljax
from rljax import deep_sarsa
from rljax.nets import MLP


@pytest.mark.parametrize("next_action", [0, 1, 2, 3, 4])
def test_update_bootstraps_from_the_next_action_taken(next_action):
    env, params = rljax.make("Pacman-v0")
    spec = rljax.env_spec(env, params)
    config = deep_sarsa.DeepSARSAConfig(hidden_sizes=(8,))
    agent = deep_sarsa.make_deep_sarsa(config, spec)
    hp = deep_sarsa.DeepSARSAHParams(gamma=0.9)
    obs0, _ = env.reset(jax.random.key(0), params)
    state = agent.init(jax.random.key(1), hp, obs0[None])
    obs1 = obs0 + 1.0
    rollout = rljax.Transition(  # s0 -a=2-> s1 (r = 0.5), then next_action at s1
        obs=jnp.stack([obs0, obs1])[:, None],
        action=jnp.array([[2], [next_action]], jnp.int32),
        reward=jnp.array([[0.5], [0.0]]),
        discount=jnp.ones((2, 1)),
        next_obs=jnp.stack([obs1, obs1])[:, None],
        done=jnp.zeros((2, 1), bool),
    )
    _, metrics = agent.update(state, rollout, jax.random.key(2))
    # Only the first transition is learned now (the second waits for its next action).
    net = MLP((8,), 5, kernel_init="he_uniform")
    q0, q1 = net.apply(state.params, obs0), net.apply(state.params, obs1)
    expected = (q0[2] - (0.5 + 0.9 * q1[next_action])) ** 2
    assert float(metrics["loss"]) == pytest.approx(float(expected), rel=1e-5)


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="learning_rate"):
        deep_sarsa.DeepSARSAHParams(learning_rate=0.0)
    with pytest.raises(ValueError, match=r"epsilon_decay must lie in \[0\.0, 1\.0\], got 1\.5"):
        deep_sarsa.DeepSARSAHParams(epsilon_decay=1.5)
    with pytest.raises(ValueError, match="hidden_sizes"):
        deep_sarsa.DeepSARSAConfig(hidden_sizes=(0,))
