"""Presets belong to (algorithm, environment) pairs: every algorithm x every environment of
the course either trains with settings made for it (or generic ones: no reward rewriting,
no stopping rule from another task) or is refused with a reason (issue 13)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import rljax
from rljax.run import registry

COURSE_ENVS = [
    "GridWorld-v0", "GridWorld5-v0", "GridWorld100-v0", "GridWorldDP-v0", "Pacman-v0",
    "PacmanReinforce-v0", "CartPole-v1", "Breakout-MinAtar", "Acrobot-v1", "MountainCar-v0",
]  # fmt: skip


@pytest.mark.parametrize("algo", sorted(registry.ALGOS))
def test_every_algorithm_on_every_course_environment(algo):
    trained, refused = 0, 0
    for env_id in COURSE_ENVS:
        if env_id not in rljax.registered_envs():
            continue
        try:
            exp = registry.make_experiment(algo, env_id)
        except ValueError as e:
            refused += 1
            assert env_id in str(e) or algo in str(e), (algo, env_id, str(e))
            continue
        trained += 1
        preset = registry.ALGOS[algo].presets[exp.preset]
        if env_id not in preset.envs:  # nothing made for another task comes along
            assert exp.preset == "generic", (algo, env_id, exp.preset)
            assert exp.train_config.stop_return is None
            assert getattr(exp.hparams, "terminal_reward", None) is None
    assert trained >= 1, algo


def test_a_preset_made_for_another_environment_is_an_error():
    with pytest.raises(ValueError, match=r"preset 'course' of dqn was made for CartPole-v1"):
        registry.make_experiment("dqn", "Acrobot-v1", "course")
    with pytest.raises(ValueError, match="observes a state index"):
        registry.make_experiment("dqn", "GridWorld-v0")
    with pytest.raises(ValueError, match="sarsa has no settings for CartPole-v1: its presets"):
        registry.make_experiment("sarsa", "CartPole-v1")
    # The CartPole-tuned DQN (-100 on termination, stop at 490) is CartPole's only.
    assert registry.make_experiment("dqn", "CartPole-v1").hparams.terminal_reward == -100.0
    generic = registry.make_experiment("dqn", "MountainCar-v0")
    assert generic.preset == "generic" and generic.hparams.terminal_reward is None


@pytest.mark.parametrize(
    ("algo", "env_id"),
    [("dqn", "Acrobot-v1"), ("a2c", "MountainCar-v0"), ("deep_sarsa", "CartPole-v1"),
     ("q_learning", "GridWorld5-v0"), ("value_iteration", "GridWorld100-v0")],
)  # fmt: skip
def test_generic_and_other_grid_settings_train(algo, env_id):
    small = {"total_env_steps": "256", "chunk_env_steps": "128", "eval_episodes": "2"}
    if algo == "a2c":
        small["chunk_env_steps"] = "256"
    if algo in ("dqn", "deep_sarsa", "a2c"):
        small["hidden_sizes"] = "8"
    exp = registry.make_experiment(algo, env_id, overrides=small)
    out = jax.jit(rljax.make_train(exp.agent, exp.env, exp.env_params, exp.train_config))(
        jax.random.key(0), exp.hparams
    )
    assert int(out.state.env_steps) == 256
    assert np.all(np.isfinite(np.asarray(out.eval_returns)))
