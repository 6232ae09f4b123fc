"""Shared helpers for the test suite."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# One persistent compilation cache for the whole test run, never the user's ~/.cache: the
# first process to load this file (the xdist controller, or a plain pytest) makes a
# temporary folder; the workers and every `python -m rljax` subprocess inherit it, so a
# program compiled in one process (an example, a CLI test, a worker) loads in the others.
if not os.environ.get("RLJAX_COMPILE_CACHE_DIR"):
    _cache = tempfile.mkdtemp(prefix="rljax-test-jax-cache-")
    os.environ["RLJAX_COMPILE_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)

# One CPU device per test process: the xdist workers already keep every core busy, and
# the tests compare runs on a named number of devices. (A test that wants the per-core
# devices of `import rljax` sets RLJAX_CPU_DEVICES in its subprocess.)
os.environ["RLJAX_CPU_DEVICES"] = "1"

from typing import NamedTuple

import jax
import jax.numpy as jnp

import rljax
from rljax.run.cache import enable_compile_cache

enable_compile_cache()


class RecorderState(NamedTuple):
    params: jax.Array  # unused: a constant action
    last: rljax.Transition  # the last rollout handed to `update`
    update_calls: jax.Array


def make_recorder(rollout_len: int, num_envs: int, obs_shape: tuple[int, ...]) -> rljax.Agent:
    """An agent that always takes action `params` and keeps the last rollout it was given.

    `init` receives the first observations `[num_envs, *obs_shape]`."""

    def init(key, hparams, obs):
        del key, hparams
        zeros = lambda *s, dtype=jnp.float32: jnp.zeros((rollout_len, num_envs, *s), dtype)  # noqa: E731
        last = rljax.Transition(
            obs=zeros(*obs.shape[1:]),
            action=zeros(dtype=jnp.int32),
            reward=zeros(),
            discount=zeros(),
            next_obs=zeros(*obs.shape[1:]),
            done=zeros(dtype=bool),
        )
        return RecorderState(params=jnp.int32(0), last=last, update_calls=jnp.int32(0))

    def act(state, obs, key, greedy=False):
        del key, greedy
        return jnp.full(obs.shape[:1], state.params, jnp.int32)

    def update(state, rollout, key):
        del key
        state = RecorderState(
            params=state.params, last=rollout, update_calls=state.update_calls + 1
        )
        return state, {"reward_sum": jnp.sum(rollout.reward)}

    return rljax.Agent(init=init, act=act, update=update)
