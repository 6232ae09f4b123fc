"""DQN: target on hand-worked numbers, exploration, bad input, learning on probe MDPs."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rljax
from rljax import dqn, exploration, optim


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
    assert (hp.learning_starts, hp.huber, hp.terminal_reward) == (1000, 0, -100)
    assert p.config.double_dqn is False  # the course's target: the target network's max
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


def test_dqn_bootstraps_from_the_next_observation():
    # Probe-Chain-v0: [-1] pays 0 and leads to [+1], which pays 1 and terminates. By hand:
    # Q([+1], a) = 1 and Q([-1], a) = gamma * 1 = 0.9 for both actions. Bootstrapping from
    # the observation acted on instead of the next one would give Q([-1], a) = 0.
    _, q = _train_probe("Probe-Chain-v0", dataclasses.replace(PROBE_HP, gamma=0.9))
    np.testing.assert_allclose(q[:, 0, :], 1.0, atol=0.1)
    np.testing.assert_allclose(q[:, 1, :], 0.9, atol=0.1)


# --- Options, one behaviour each, through the agent on a crafted rollout ------------------

TINY = dqn.DQNConfig(hidden_sizes=(4,), buffer_size=8, batch_size=4)
TINY_SPEC = rljax.EnvSpec(obs_shape=(1,), num_actions=2)


@pytest.fixture(scope="module")
def tiny_dqn():
    """`(init(hparams) -> state, update(state, rollout) -> (state, metrics))`, the update
    jitted once: hyperparameters are leaves of the state, so every test reuses it."""
    agent = dqn.make_dqn(TINY, TINY_SPEC)
    update = jax.jit(agent.update)

    def init(hparams):
        return agent.init(jax.random.key(0), hparams, jnp.zeros((4, 1)))

    return init, lambda state, rollout: update(state, rollout, jax.random.key(1))


def _crafted(reward=10.0, done=True):
    """Four identical transitions [T = 1, B = 4]: action 1 at [1], then [-1]; terminal by
    default, so the TD error is `reward - Q([1], 1)` with no bootstrap."""
    return rljax.Transition(
        obs=jnp.ones((1, 4, 1)),
        action=jnp.ones((1, 4), jnp.int32),
        reward=jnp.full((1, 4), reward),
        discount=jnp.full((1, 4), 0.0 if done else 1.0),
        next_obs=-jnp.ones((1, 4, 1)),
        done=jnp.full((1, 4), done),
    )


NO_LEARNING = dict(learning_starts=1_000.0, target_update_period=0.0)


def _scaled(tree, factor):
    return jax.tree.map(lambda x: factor * x, tree)


def _assert_tree_close(a, b, **kw):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **kw), a, b)


def test_tau_moves_the_target_part_way(tiny_dqn):
    # target <- tau * online + (1 - tau) * target, from a zero target: 0.25 p, then
    # 0.25 p + 0.75 * 0.25 p = 0.4375 p (no gradient step: the online p stays put).
    init, update = tiny_dqn
    state = init(dqn.DQNHParams(**{**NO_LEARNING, "target_update_period": 1.0}, tau=0.25))
    state = state._replace(target_params=_scaled(state.params, 0.0))
    state, _ = update(state, _crafted(done=False))
    _assert_tree_close(state.target_params, _scaled(state.params, 0.25), rtol=1e-6)
    state, _ = update(state, _crafted(done=False))
    _assert_tree_close(state.target_params, _scaled(state.params, 0.4375), rtol=1e-6)


def test_target_update_on_done_copies_only_when_an_episode_ended(tiny_dqn):
    init, update = tiny_dqn
    state = init(dqn.DQNHParams(**NO_LEARNING, target_update_on_done=True))
    state = state._replace(target_params=_scaled(state.params, 0.0))
    state, _ = update(state, _crafted(done=False))
    _assert_tree_close(state.target_params, _scaled(state.params, 0.0))
    state, _ = update(state, _crafted(done=True))
    _assert_tree_close(state.target_params, state.params)


def test_target_period_copies_on_every_third_update_call(tiny_dqn):
    # target_update_period = 3: calls 3 and 6 copy the parameters they end with; the other
    # calls leave the target alone. The online network learns at every call.
    init, update = tiny_dqn
    hp = dqn.DQNHParams(learning_starts=0.0, target_update_period=3.0, learning_rate=1e-2)
    state = init(hp)
    target = state.params  # init: target = online
    for call in range(1, 8):
        before = state.params
        state, _ = update(state, _crafted())
        moved = jax.tree.leaves(
            jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.params, before)
        )
        assert any(moved), call
        if call % 3 == 0:
            target = state.params
        _assert_tree_close(state.target_params, target, rtol=0, atol=0, err_msg=str(call))


@pytest.mark.parametrize("double", [False, True])
def test_the_target_is_dqns_or_double_dqns_as_configured(double):
    # Not terminal, gamma 0.5: td = r + 0.5 * Q_target([-1], a') - Q([1], 1), a' the target
    # network's argmax (DQN) or the online network's (Double DQN). The target network is the
    # online one with 100 added to the output bias of the action the online net ranks last,
    # so the two targets differ by 50.
    agent = dqn.make_dqn(dataclasses.replace(TINY, double_dqn=double), TINY_SPEC)
    hp = dqn.DQNHParams(
        learning_starts=0.0, target_update_period=0.0, huber=False, gamma=0.5,
        max_grad_norm=math.inf,
    )  # fmt: skip
    state = agent.init(jax.random.key(0), hp, jnp.zeros((4, 1)))
    network = rljax.nets.q_network(TINY.hidden_sizes, TINY.kernel_init, TINY_SPEC)
    online_next = np.asarray(network.apply(state.params, -jnp.ones((1,))))
    last = int(np.argmin(online_next))
    shift = np.zeros(2, np.float32)
    shift[last] = 100.0
    target = jax.tree.map(lambda x: x + shift if x.shape == (2,) else x, state.params)
    state = state._replace(target_params=target)
    target_next = np.asarray(network.apply(target, -jnp.ones((1,))))
    picked = int(np.argmax(online_next)) if double else int(np.argmax(target_next))
    assert picked == (1 - last if double else last)
    q = float(network.apply(state.params, jnp.ones((1,)))[1])
    td = 10.0 + 0.5 * float(target_next[picked]) - q
    _, metrics = jax.jit(agent.update)(state, _crafted(done=False), jax.random.key(1))
    np.testing.assert_allclose(metrics["loss"], td**2, rtol=1e-5)


def _hand_step(params, huber, max_grad_norm, reward=10.0):
    """By hand: the TD error of the crafted transition, its loss, and the clipped gradient
    `-loss'(td) * grad Q([1], 1)` (loss' = 2 td squared, clip(td, -1, 1) Huber)."""
    network = rljax.nets.q_network(TINY.hidden_sizes, TINY.kernel_init, TINY_SPEC)
    q, grad_q = jax.value_and_grad(lambda p: network.apply(p, jnp.ones((1,)))[1])(params)
    td = reward - float(q)
    loss = (abs(td) - 0.5 if abs(td) > 1 else 0.5 * td**2) if huber else td**2
    slope = float(np.clip(td, -1, 1)) if huber else 2 * td
    g = _scaled(grad_q, -slope)
    norm = float(np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree.leaves(g))))
    return loss, _scaled(g, min(1.0, max_grad_norm / norm)), norm


@pytest.mark.parametrize(
    ("huber", "max_grad_norm"), [(False, math.inf), (True, math.inf), (False, 0.5)]
)
def test_loss_and_clipping_shape_the_first_adam_step(tiny_dqn, huber, max_grad_norm):
    # After one Adam step from zero moments: mu = (1 - b1) g, nu = (1 - b2) g^2 and the
    # parameters move by -lr * g / (|g| + eps), g the clipped gradient. The squared loss's
    # gradient is 2 * td / clip(td) = 2 * 9.x times the Huber one here; clipping rescales it
    # to global norm 0.5.
    init, update = tiny_dqn
    hp = dqn.DQNHParams(
        learning_starts=0.0, target_update_period=0.0, huber=huber, max_grad_norm=max_grad_norm,
        learning_rate=1e-2,
    )  # fmt: skip
    state = init(hp)
    loss, g, norm = _hand_step(state.params, huber, max_grad_norm)
    assert norm > 0.5  # clipping is active where it is asked for
    new, metrics = update(state, _crafted())
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
    _assert_tree_close(optax.tree_utils.tree_get(new.opt_state, "mu"), _scaled(g, 0.1), rtol=1e-4)
    step = jax.tree.map(lambda x: -1e-2 * x / (np.abs(x) + 1e-8), g)
    _assert_tree_close(jax.tree.map(jnp.subtract, new.params, state.params), step, atol=1e-7)


def test_learning_rate_decays_linearly_and_is_the_rate_used(tiny_dqn):
    # learning_rate 1e-2 -> 0 over 4 gradient steps: step n (from 0) uses 1e-2 * (1 - n / 4).
    hp = dqn.DQNHParams(
        learning_rate=1e-2, learning_rate_end=0.0, learning_rate_decay_steps=4.0,
        learning_starts=0.0, target_update_period=0.0,
    )  # fmt: skip
    leaves = jax.tree.map(jnp.float32, hp)
    rates = [float(dqn.learning_rate_at(leaves, jnp.int32(n))) for n in (0, 1, 2, 4, 9)]
    np.testing.assert_allclose(rates, [1e-2, 7.5e-3, 5e-3, 0.0, 0.0], atol=1e-9)
    init, update = tiny_dqn
    state = init(hp)
    for n in range(3):
        new, _ = update(state, _crafted())
        rate = 1e-2 * (1 - n / 4)
        np.testing.assert_allclose(optim.learning_rate(new.opt_state), rate, rtol=1e-6)
        # Adam by hand with the moments the step left: -rate * m_hat / (sqrt(v_hat) + eps).
        m_hat = _scaled(optax.tree_utils.tree_get(new.opt_state, "mu"), 1 / (1 - 0.9 ** (n + 1)))
        v_hat = _scaled(optax.tree_utils.tree_get(new.opt_state, "nu"), 1 / (1 - 0.999 ** (n + 1)))
        step = _scaled(jax.tree.map(lambda m, v: m / (np.sqrt(v) + 1e-8), m_hat, v_hat), -rate)
        _assert_tree_close(jax.tree.map(jnp.subtract, new.params, state.params), step, atol=1e-7)
        state = new


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
    assert float(metrics["loss"]) == 0.0  # learning has not started: no gradient step taken
    assert int(state.gradient_steps) == 0
