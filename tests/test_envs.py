"""Environment registry and specs."""

from __future__ import annotations

import pytest

import rljax


def test_gymnax_ids_pass_through():
    env, params = rljax.make("CartPole-v1")
    assert params.max_steps_in_episode == 500
    assert rljax.env_spec(env, params) == rljax.EnvSpec(obs_shape=(4,), num_actions=2)


def test_own_ids_are_registered():
    assert {"Probe-Bandit-v0", "Probe-Truncation-v0"} <= set(rljax.registered_envs())
    env, params = rljax.make("Probe-Bandit-v0")
    assert rljax.env_spec(env, params).num_actions == 2


def test_unknown_id_lists_known_ids():
    with pytest.raises(ValueError, match=r"unknown environment id 'CartPole-v9'.*CartPole-v1"):
        rljax.make("CartPole-v9")


def test_continuous_action_space_is_refused():
    env, params = rljax.make("Pendulum-v1")
    with pytest.raises(ValueError, match=r"Pendulum.*Discrete"):
        rljax.env_spec(env, params)


def test_register_refuses_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        rljax.register("Probe-Bandit-v0", lambda: None)
