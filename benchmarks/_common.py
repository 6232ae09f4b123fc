"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import time

import jax

import rljax


def raw_env_throughput(env_id: str, batch: int, steps: int = 20_000) -> float:
    """Env steps per second of `env_id` under `jit`, `batch` environments vmapped, random
    actions, auto-reset included: the ceiling training throughput is compared with."""
    env, params = rljax.make(env_id)
    num_actions = env.action_space(params).n

    def run(key):
        _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, batch), params)

        def step(carry, key):
            state, total = carry
            k_act, k_step = jax.random.split(key)
            action = jax.random.randint(k_act, (batch,), 0, num_actions)
            _, state, reward, *_ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(k_step, batch), state, action, params
            )
            return (state, total + reward.sum()), None

        n = max(1, steps // batch)
        return jax.lax.scan(step, (state, 0.0), jax.random.split(key, n))[0][1]

    f = jax.jit(run).lower(jax.random.key(0)).compile()
    jax.block_until_ready(f(jax.random.key(1)))
    t0 = time.perf_counter()
    jax.block_until_ready(f(jax.random.key(2)))
    return max(1, steps // batch) * batch / (time.perf_counter() - t0)
