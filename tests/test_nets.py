"""The orthogonal initializer: flax's draws, without LAPACK (whose batched QR can deadlock
XLA's CPU thread pool under `vmap`)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rljax import a2c
from rljax.core.types import env_spec
from rljax.envs import make
from rljax.nets import orthogonal, orthonormal_columns


@pytest.mark.parametrize("shape", [(4, 64), (64, 64), (64, 2), (64, 1), (3, 3, 4, 16)])
@pytest.mark.parametrize("scale", [1.0, 0.01])
def test_orthogonal_draws_what_flax_draws(shape, scale):
    key = jax.random.key(3)
    ours = np.asarray(orthogonal(scale)(key, shape))
    theirs = np.asarray(nn.initializers.orthogonal(scale)(key, shape))
    np.testing.assert_allclose(ours, theirs, atol=2e-6 * max(scale, 1e-2) * 10)


def test_orthonormal_columns_are_orthonormal_and_triangular_with_a_positive_diagonal():
    a = jax.random.normal(jax.random.key(0), (50, 20))
    q = np.asarray(orthonormal_columns(a))
    np.testing.assert_allclose(q.T @ q, np.eye(20), atol=1e-5)
    r = q.T @ np.asarray(a)  # a = q r with r upper triangular, diagonal > 0
    np.testing.assert_allclose(np.tril(r, -1), 0.0, atol=1e-4)
    assert (np.diag(r) > 0).all()
    with pytest.raises(ValueError, match=r"rows >= columns, got shape \(2, 3\)"):
        orthonormal_columns(jnp.zeros((2, 3)))


def test_a_vmapped_actor_critic_init_calls_no_lapack():
    env, env_params = make("CartPole-v1")
    p = a2c.preset("cartpole")
    agent = a2c.make_a2c(p.config, env_spec(env, env_params))
    obs = jnp.zeros((2, p.train_config.num_envs, 4))
    keys = jax.random.split(jax.random.key(0), 2)
    hparams = jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * 2), p.hparams)
    text = jax.jit(jax.vmap(agent.init)).lower(keys, hparams, obs).as_text()
    assert "lapack" not in text.lower() and "geqrf" not in text.lower()  # QR's kernel
