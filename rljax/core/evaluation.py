"""Greedy evaluation: returns of whole episodes of an agent's greedy policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments.environment import Environment

from rljax.core.keys import split_to_scan
from rljax.core.types import Agent, AgentState, Array, Key, PyTree


def env_batch_fns(env: Any) -> tuple[Callable, Callable]:
    """`reset(keys [B], env_params)` and `step(keys [B], states, actions [B], env_params)`,
    the environment's own functions vmapped over a batch of environments."""
    return jax.vmap(env.reset, in_axes=(0, None)), jax.vmap(env.step, in_axes=(0, 0, 0, None))


def steps_within_episodes(env: Any) -> bool:
    """Whether `env.step` is gymnax's: `step_env` with the first half of its key split,
    then an auto-reset with the second half (or declares itself so, `AUTO_RESET_STEP`). Up
    to an episode's end, `step_env` then gives what `step` gives; a wrapper's `step` may
    transform it, so it is stepped as it is."""
    return type(env).step is Environment.step or getattr(env, "AUTO_RESET_STEP", False)


def episode_step_fn(env: Any) -> Callable:
    """`step(keys [B], states, actions [B], env_params) -> (obs, states, reward,
    terminated, truncated)` of a batch of environments, valid until each episode ends:
    without the auto-reset where `steps_within_episodes(env)` (the reset's random draws are
    neither computed nor compiled), else `env.step` itself."""
    if not steps_within_episodes(env):
        step = env_batch_fns(env)[1]
        return lambda keys, states, actions, params: step(keys, states, actions, params)[:5]

    def step(key: Key, state: Any, action: Array, params: Any) -> tuple:
        key_step, _ = jax.random.split(key)  # as gymnax's `step` splits it
        obs, state, reward, terminated, _ = env.step_env(key_step, state, action, params)
        return obs, state, reward, terminated, env.is_truncated(state, params)

    return jax.vmap(step, in_axes=(0, 0, 0, None))


def default_max_steps(env_params: Any) -> int:
    """The environment's step limit, the bound of a greedy episode (10,000 if it has none)."""
    return int(getattr(env_params, "max_steps_in_episode", 10_000))


def make_evaluate(
    agent: Agent, env: Any, env_params: Any, episodes: int, max_steps: int
) -> Callable[[AgentState, Key], Array]:
    """`evaluate(agent_state, key) -> returns [episodes]`: that many greedy episodes run in
    parallel, each summing its own rewards up to its own end (termination or truncation)
    and nothing after; at most `max_steps` steps are run. An environment is not reset at
    its episode's end (`episode_step_fn`): what it computes after the end is not counted."""
    reset_fn = env_batch_fns(env)[0]
    step_fn = episode_step_fn(env)

    def evaluate(agent_state: AgentState, key: Key) -> Array:
        key, k_reset = jax.random.split(key)
        obs, env_state = reset_fn(jax.random.split(k_reset, episodes), env_params)
        returns = jnp.zeros((episodes,), jnp.float32)
        init = (obs, env_state, returns, jnp.zeros((episodes,), bool), key, 0)

        def cond(carry):
            *_, done, _, t = carry
            return (~jnp.all(done)) & (t < max_steps)

        def body(carry):
            obs, env_state, returns, done, key, t = carry
            key, k_act, k_step = jax.random.split(key, 3)
            action = agent.act(agent_state, obs, k_act, greedy=True)
            obs, env_state, reward, terminated, truncated = step_fn(
                jax.random.split(k_step, episodes), env_state, action, env_params
            )
            returns = returns + jnp.where(done, 0.0, reward.astype(jnp.float32))
            done = done | terminated | truncated
            return obs, env_state, returns, done, key, t + 1

        return jax.lax.while_loop(cond, body, init)[2]

    return evaluate


def greedy_episode(
    agent: Agent, env: Any, env_params: Any, agent_state: AgentState, key: Key, max_steps: int
) -> tuple[PyTree, Array, Array]:
    """Play one greedy episode (unbatched) and record it, e.g. to render it.

    Steps with `env.step_env` (no auto-reset), so the last recorded state is the one the
    episode ended in. Returns `(states, rewards, length)`: the states before each step and
    after the last, stacked `[max_steps + 1, ...]` and frozen once the episode ended; the
    rewards `[max_steps]` (0 after the end); the number of steps the episode took.
    """
    k_reset, key = jax.random.split(key)
    obs, state = env.reset(k_reset, env_params)
    keys, as_key = split_to_scan(key, max_steps)

    def step(carry, k):
        obs, state, done = carry
        k_act, k_step = jax.random.split(as_key(k))
        action = agent.act(agent_state, obs[None], k_act, greedy=True)[0]
        obs2, state2, reward, terminated, _ = env.step_env(k_step, state, action, env_params)
        ended = done | terminated | env.is_truncated(state2, env_params)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(done, b, a), new, old)  # noqa: E731
        carry = (keep(obs2, obs), keep(state2, state), ended)
        return carry, (state, jnp.where(done, 0.0, reward), ~done)

    (_, last, _), (states, rewards, alive) = jax.lax.scan(
        step, (obs, state, jnp.bool_(False)), keys
    )
    states = jax.tree.map(lambda s, x: jnp.concatenate([s, x[None]]), states, last)
    return states, rewards, jnp.sum(alive)
