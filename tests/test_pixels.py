"""Pixels: the convolutional torso (shapes, equality with flax's Conv, validation), the
vector-observation networks unchanged, reward clipping, and DQN and A2C learning the pixel
probe `Probe-Pixels-v0` through the torso."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rljax
from rljax import a2c, a3c, deep_sarsa, dqn, nets, reinforce
from rljax.core.types import EnvSpec
from rljax.core.validation import as_leaves
from rljax.envs.pixel_probe import PixelState
from rljax.replay import replay_init

KEY = jax.random.key(0)


def shapes(params):
    return jax.tree.map(jnp.shape, params)


def init_shapes(module, x):
    """The parameter shapes `module.init` gives for input `x`, without computing them."""
    return shapes(jax.eval_shape(module.init, KEY, x))


# --- the torso -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obs_shape", "conv", "features"),
    [
        ((10, 10, 4), nets.MINATAR_CONV, 8 * 8 * 16),  # MinAtar: 3x3, VALID
        ((10, 10, 4), ((16, 3, 1), (32, 3, 2)), 3 * 3 * 32),  # (8 - 3) // 2 + 1 = 3
        ((84, 84, 4), ((16, 8, 4), (32, 4, 2)), 9 * 9 * 32),  # the course's A3C: 20, then 9
        ((6, 6), ((4, 3, 1),), 4 * 4 * 4),  # [H, W]: one channel
        ((5, 5, 2, 3), ((4, 3, 1),), 3 * 3 * 4),  # trailing axes merged into channels
        ((10, 10, 4), (), 400),  # no convolution: flattened
    ],
)
def test_torso_shapes(obs_shape, conv, features):
    torso = nets.ConvTorso(conv, len(obs_shape))
    x = jax.ShapeDtypeStruct((2, 3, *obs_shape), jnp.float32)  # [T, B, *obs_shape]
    params = jax.eval_shape(torso.init, KEY, x)
    out = jax.eval_shape(torso.apply, params, x)
    assert out.shape == (2, 3, features) and out.dtype == jnp.float32
    assert len(jax.tree.leaves(params)) == 2 * len(conv)


@pytest.mark.parametrize(("kernel", "stride"), [(3, 1), (8, 4)])
def test_patch_conv_is_flax_conv(kernel, stride):
    x = jax.random.normal(KEY, (2, 12, 11, 3))
    ours = nets.PatchConv(5, kernel, stride)
    flax_conv = nn.Conv(5, (kernel, kernel), (stride, stride), "VALID")
    params = ours.init(jax.random.key(1), x)
    # Same parameter names, shapes and initial values as flax's Conv for the same key.
    jax.tree.map(np.testing.assert_array_equal, params, flax_conv.init(jax.random.key(1), x))
    params = jax.tree.map(lambda p: jax.random.normal(jax.random.key(2), p.shape), params)
    np.testing.assert_allclose(ours.apply(params, x), flax_conv.apply(params, x), atol=1e-5)


def test_image_observations_get_the_minatar_torso_by_default():
    spec = EnvSpec(obs_shape=(10, 10, 4), num_actions=3)
    q = nets.q_network((128,), "lecun_normal", spec)
    x = jax.ShapeDtypeStruct((2, 10, 10, 4), jnp.float32)
    assert init_shapes(q, x) == {
        "params": {
            "ConvTorso_0": {"PatchConv_0": {"kernel": (3, 3, 4, 16), "bias": (16,)}},
            "Dense_0": {"kernel": (1024, 128), "bias": (128,)},
            "Dense_1": {"kernel": (128, 3), "bias": (3,)},
        }
    }
    ac = nets.ActorCritic((128,), 3, shared_torso=True, activation="relu", obs_ndim=3)
    p = jax.eval_shape(ac.init, KEY, x)
    assert set(p["params"]) == {"conv_torso", "torso_0", "policy_head", "value_head"}
    logits, value = ac.apply(ac.init(KEY, jnp.zeros((2, 10, 10, 4))), jnp.ones((4, 2, 10, 10, 4)))
    assert logits.shape == (4, 2, 3) and value.shape == (4, 2)
    # Separate networks: each its own torso.
    p = init_shapes(nets.ActorCritic((8,), 3, obs_ndim=3), x)
    assert "ConvTorso_0" in p["params"]["actor"] and "ConvTorso_0" in p["params"]["critic"]


def test_vector_observations_keep_their_parameter_trees():
    # The trees every vector-observation result so far was trained with: Dense layers only,
    # named as before the torso existed.
    x = jnp.zeros((3, 4))
    mlp = nets.MLP((8, 6), 2).init(KEY, x)
    assert init_shapes(nets.MLP((8, 6), 2), x) == {
        "params": {
            "Dense_0": {"kernel": (4, 8), "bias": (8,)},
            "Dense_1": {"kernel": (8, 6), "bias": (6,)},
            "Dense_2": {"kernel": (6, 2), "bias": (2,)},
        }
    }
    q = init_shapes(nets.q_network((24, 24), "he_uniform", EnvSpec((4,), 2)), x)
    assert set(q["params"]) == {"Dense_0", "Dense_1", "Dense_2"}
    assert init_shapes(nets.ActorCritic((16,), 2, shared_torso=True), x) == {
        "params": {
            "torso_0": {"kernel": (4, 16), "bias": (16,)},
            "policy_head": {"kernel": (16, 2), "bias": (2,)},
            "value_head": {"kernel": (16, 1), "bias": (1,)},
        }
    }
    separate = init_shapes(nets.ActorCritic((16,), 2), x)
    assert set(separate["params"]) == {"actor", "critic"}
    assert set(separate["params"]["actor"]) == {"Dense_0", "Dense_1"}
    # An explicit empty spec is the same network as the default on vectors.
    same = nets.MLP((8, 6), 2, conv=()).init(KEY, x)
    jax.tree.map(np.testing.assert_array_equal, same, mlp)


@pytest.mark.parametrize(
    "make_config",
    [dqn.DQNConfig, deep_sarsa.DeepSARSAConfig, reinforce.ReinforceConfig, a2c.A2CConfig],
)
@pytest.mark.parametrize(
    "bad", [((16, 3),), ((0, 3, 1),), [(16, 3, 1)], ((16, 3, True),), "minatar"]
)
def test_bad_conv_spec_names_field_and_value(make_config, bad):
    name = make_config.__name__
    with pytest.raises(ValueError, match=rf"{name}\.conv must be None or a tuple.*got"):
        make_config(conv=bad)


def test_conv_needs_image_observations_and_kernels_that_fit():
    with pytest.raises(ValueError, match=r"conv=\(\(16, 3, 1\),\) needs image observations"):
        nets.q_network((8,), "lecun_normal", EnvSpec((4,), 2), conv=((16, 3, 1),))
    torso = nets.ConvTorso(((4, 6, 1),), 3)
    with pytest.raises(ValueError, match="conv kernel 6 does not fit the 5x5 input"):
        torso.init(KEY, jnp.zeros((1, 5, 5, 1)))


def test_a3c_config_takes_the_conv_spec():
    env, params = rljax.make("Probe-Pixels-v0")
    config = a3c.A3CConfig(hidden_sizes=(8,), shared_torso=True, conv=((4, 3, 1),), num_learners=2)
    agent = a3c.make_a3c(config, rljax.env_spec(env, params))
    state = jax.eval_shape(agent.init, KEY, a3c.A3CHParams(), jnp.zeros((4, 5, 5, 1)))
    assert shapes(state.params)["params"]["conv_torso"]["PatchConv_0"]["kernel"] == (3, 3, 1, 4)


# --- reward clipping --------------------------------------------------------------------


def test_dqn_clips_stored_rewards():
    buffer = replay_init(rljax.Transition(0.0, 0, 0.0, 0.0, 0.0, False), 8)
    rollout = rljax.Transition(
        obs=jnp.zeros((1, 3)),
        action=jnp.zeros((1, 3), jnp.int32),
        reward=jnp.array([[5.0, -3.0, 0.5]]),
        discount=jnp.array([[1.0, 1.0, 0.0]]),
        next_obs=jnp.zeros((1, 3)),
        done=jnp.array([[False, False, True]]),
    )
    cases = [
        (dqn.DQNHParams(clip_rewards=True), [1.0, -1.0, 0.5]),
        (dqn.DQNHParams(clip_rewards=False), [5.0, -3.0, 0.5]),
        # A terminal reward still replaces the (clipped) reward of the terminating step.
        (dqn.DQNHParams(clip_rewards=True, terminal_reward=-100.0), [1.0, -1.0, -100.0]),
    ]
    for hp, expected in cases:
        stored = dqn._store(buffer, rollout, as_leaves(hp))
        np.testing.assert_array_equal(stored.data.reward[:3], expected)


def test_a2c_clips_rewards_before_the_returns():
    env, params = rljax.make("Probe-Bandit-v0")
    config = a2c.A2CConfig(hidden_sizes=(4,), shared_torso=True)
    network = a2c.make_network(config, rljax.env_spec(env, params))
    p = network.init(KEY, jnp.zeros((2, 1)))
    rollout = lambda r: rljax.Transition(  # noqa: E731
        obs=jnp.ones((2, 2, 1)),
        action=jnp.zeros((2, 2), jnp.int32),
        reward=jnp.full((2, 2), r),
        discount=jnp.ones((2, 2)),
        next_obs=jnp.ones((2, 2, 1)),
        done=jnp.zeros((2, 2), bool),
    )
    grad = jax.jit(lambda r, hp: a2c.rollout_gradient(network, p, rollout(r), hp)[0])
    big = grad(7.0, as_leaves(a2c.A2CHParams(clip_rewards=True)))
    one = grad(1.0, as_leaves(a2c.A2CHParams(clip_rewards=False)))
    unclipped = grad(7.0, as_leaves(a2c.A2CHParams(clip_rewards=False)))
    jax.tree.map(np.testing.assert_allclose, big, one)
    assert not np.allclose(
        unclipped["params"]["value_head"]["bias"], one["params"]["value_head"]["bias"]
    )


# --- the pixel probe and learning through the torso --------------------------------------


def _all_images(env):
    """The 20 possible observations `[20, 5, 5, 1]` and whether each is on the right."""
    cells = [(r, c) for r in range(5) for c in (0, 1, 3, 4)]
    images = jnp.stack(
        [env.get_obs(PixelState(time=0, row=jnp.int32(r), column=jnp.int32(c))) for r, c in cells]
    )
    return images, np.array([c >= 3 for _, c in cells], int)


def test_pixel_probe_pays_the_side_of_its_pixel():
    env, params = rljax.make("Probe-Pixels-v0")
    assert rljax.env_spec(env, params) == EnvSpec(obs_shape=(5, 5, 1), num_actions=2)
    images, _ = _all_images(env)
    assert np.all(images.sum(axis=(1, 2, 3)) == 1.0) and np.all(images[:, :, 2] == 0.0)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(KEY, 256), params)
    columns = np.asarray(state.column)
    assert set(columns) == {0, 1, 3, 4} and set(np.asarray(state.row)) == set(range(5))
    side = (columns >= 3).astype(int)
    for action, paid in ((side, 1.0), (1 - side, 0.0)):
        step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
        _, _, reward, terminated, *_ = step(jax.random.split(KEY, 256), state, action, params)
        assert np.all(np.asarray(reward) == paid) and np.all(np.asarray(terminated))


SEEDS = 3


def _train(agent, env, params, steps, num_envs, hparams):
    """`steps` env steps of `SEEDS` vmapped runs in one chunk; the agent states `[S, ...]`.
    (The trainer's chunk alone: the end-of-run evaluation would double the compile time,
    and the tests below check every observation's greedy action directly.)"""
    tc = rljax.TrainConfig(total_env_steps=steps, num_envs=num_envs, chunk_env_steps=steps)
    trainer = rljax.make_trainer(agent, env, params, tc)
    state = jax.jit(jax.vmap(trainer.init))(
        jax.random.split(KEY, SEEDS), rljax.tile_hparams(hparams, SEEDS)
    )
    state, _ = jax.jit(jax.vmap(trainer.run_chunk))(state)
    return state.agent


def test_dqn_learns_the_pixel_probe():
    env, params = rljax.make("Probe-Pixels-v0")
    spec = rljax.env_spec(env, params)
    config = dqn.DQNConfig(hidden_sizes=(32,), buffer_size=1_000, batch_size=32)
    # A uniformly random behaviour (epsilon stays 1): both actions' values are learned.
    hp = dqn.DQNHParams(
        learning_rate=3e-3, learning_starts=100.0, target_update_period=20.0, epsilon_decay=1.0
    )
    agent = _train(dqn.make_dqn(config, spec), env, params, 2_000, 4, hp)
    images, right = _all_images(env)
    net = nets.q_network(config.hidden_sizes, config.kernel_init, spec)
    q = np.asarray(jax.vmap(net.apply, in_axes=(0, None))(agent.params, images))
    rows = np.arange(len(right))
    # Exact values: 1 for the pixel's side, 0 for the other (one-step episodes).
    np.testing.assert_allclose(q[:, rows, right], 1.0, atol=0.1)
    np.testing.assert_allclose(q[:, rows, 1 - right], 0.0, atol=0.1)
    np.testing.assert_array_equal(q.argmax(-1), np.broadcast_to(right, (SEEDS, len(right))))


def test_a2c_learns_the_pixel_probe():
    env, params = rljax.make("Probe-Pixels-v0")
    spec = rljax.env_spec(env, params)
    config = a2c.A2CConfig(hidden_sizes=(32,), shared_torso=True, activation="relu")
    hp = a2c.A2CHParams(learning_rate=1e-2)
    agent = _train(a2c.make_a2c(config, spec), env, params, 3_200, 8, hp)
    images, right = _all_images(env)
    net = a2c.make_network(config, spec)
    logits, value = jax.vmap(net.apply, in_axes=(0, None))(agent.params, images)
    prob_side = np.asarray(jax.nn.softmax(logits))[:, np.arange(len(right)), right]
    assert prob_side.min() > 0.9, prob_side.min()  # greedy: the pixel's side, every image
    # V(s) = the probability of naming the pixel's side (one-step episodes): near 1.
    np.testing.assert_allclose(value, 1.0, atol=0.1)
