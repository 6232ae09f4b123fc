"""The one training driver: environment loop, rollouts, updates, episode statistics, evaluation.

`make_trainer` builds the pieces (`init`, `run_chunk`, `evaluate`) that a host-side runner
can call chunk by chunk; `make_train` composes them into one pure `train(key, hparams)`
that can be `jit`ted and `vmap`ped over seeds and hyperparameters at once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rljax.types import Agent, AgentState, Array, Key, Metrics, PyTree, Transition


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Static settings of a run: they fix shapes and loop lengths (not vmappable).

    Attributes:
      total_env_steps: environment steps per seed (all `num_envs` environments together).
      num_envs: environments stepped in parallel (vmapped) per seed, `B`.
      rollout_len: steps per environment between two agent updates, `T`.
      log_env_steps: environment steps per chunk; each chunk gives one row of metrics and is
        the unit a host-side runner executes at a time.
      eval_episodes: greedy episodes run at the end of `train` (in parallel).
      stop_return: if set, a seed stops training once the return that `stop_on` names
        exceeds this value; training halts at the end of that chunk and `stop_step` records
        the step at which the criterion was met.
      stop_window: episodes in the `train` stopping criterion's moving mean.
      stop_on: `train`: the mean return of the last `stop_window` completed training
        episodes, checked after every update; `greedy`: the mean return of
        `eval_episodes` greedy episodes run at the end of every chunk (also reported as the
        `greedy_return` metric), for agents whose greedy policy lags their exploring one.
      max_eval_steps: safety bound on the length of an evaluation episode; defaults to the
        environment's `max_steps_in_episode`.
    """

    total_env_steps: int = 100_000
    num_envs: int = 1
    rollout_len: int = 1
    log_env_steps: int = 1_000
    eval_episodes: int = 32
    stop_return: float | None = None
    stop_window: int = 10
    stop_on: str = "train"
    max_eval_steps: int | None = None

    def __post_init__(self) -> None:
        for name in (
            "total_env_steps",
            "num_envs",
            "rollout_len",
            "log_env_steps",
            "eval_episodes",
            "stop_window",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be an integer >= 1, got {value!r}")
        if self.log_env_steps % self.steps_per_update:
            raise ValueError(
                f"TrainConfig.log_env_steps={self.log_env_steps} must be a multiple of "
                f"num_envs * rollout_len = {self.steps_per_update}"
            )
        if self.total_env_steps % self.log_env_steps:
            raise ValueError(
                f"TrainConfig.total_env_steps={self.total_env_steps} must be a multiple of "
                f"log_env_steps={self.log_env_steps}"
            )
        if self.stop_return is not None and not math.isfinite(self.stop_return):
            raise ValueError(f"TrainConfig.stop_return must be finite, got {self.stop_return!r}")
        if self.stop_on not in ("train", "greedy"):
            raise ValueError(
                f"TrainConfig.stop_on must be 'train' or 'greedy', got {self.stop_on!r}"
            )
        if self.max_eval_steps is not None and self.max_eval_steps < 1:
            raise ValueError(f"TrainConfig.max_eval_steps must be >= 1, got {self.max_eval_steps}")

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.rollout_len

    @property
    def updates_per_chunk(self) -> int:
        return self.log_env_steps // self.steps_per_update

    @property
    def num_chunks(self) -> int:
        return self.total_env_steps // self.log_env_steps


class Preset(NamedTuple):
    """A complete, named setting of an algorithm: static config, traced hyperparameters,
    driver settings."""

    config: Any
    hparams: Any
    train: TrainConfig


def pick_preset(presets: dict[str, Preset], name: str, label: str) -> Preset:
    """`presets[name]`, or a `ValueError` naming `label` and listing the known presets."""
    if name not in presets:
        raise ValueError(f"unknown {label} preset {name!r}; known presets: {sorted(presets)}")
    return presets[name]


class RunState(NamedTuple):
    """Everything a run carries from one update to the next (one seed)."""

    agent: AgentState
    env_state: PyTree  # leaves [B, ...]
    obs: Array  # [B, *obs_shape]
    episode_return: Array  # [B], return of the episode in progress
    episode_length: Array  # [B], int32
    recent_returns: Array  # [stop_window], last completed returns (ring), NaN until written
    num_episodes: Array  # shape=(), int32, completed episodes so far
    env_steps: Array  # shape=(), int32
    stopped: Array  # shape=(), bool, the stopping criterion was met
    stop_step: Array  # shape=(), int32, env step at which it was met, -1 if never
    key: Key


class TrainOutput(NamedTuple):
    """What `train` returns. Under `vmap` every leaf gains a leading seed axis `[S, ...]`."""

    state: RunState
    metrics: Metrics  # each [num_chunks]; episode statistics are NaN where none completed
    eval_returns: Array  # [eval_episodes], greedy returns at the end


class Trainer(NamedTuple):
    """The driver's pieces, each pure and jittable; `train` is `init`, chunks, `evaluate`."""

    init: Callable[[Key, Any], RunState]
    run_chunk: Callable[[RunState], tuple[RunState, Metrics]]
    evaluate: Callable[[AgentState, Key], Array]
    config: TrainConfig


class _ChunkAcc(NamedTuple):
    return_sum: Array
    return_min: Array
    return_max: Array
    length_sum: Array
    episodes: Array
    agent_metrics: Metrics


def _env_step_fns(env: Any, env_params: Any):
    reset = jax.vmap(env.reset, in_axes=(0, None))
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    return reset, step


def make_trainer(agent: Agent, env: Any, env_params: Any, config: TrainConfig) -> Trainer:
    """Build the driver's pieces for `agent` on `env` (gymnax API, 6-value `step`).

    Per update the driver steps `B = num_envs` environments for `T = rollout_len` steps with
    `agent.act`, hands the rollout (a `Transition` with leaves `[T, B, ...]`) to
    `agent.update`, and accumulates the returns and lengths of completed episodes.
    `discount` is 0 only on termination; on truncation `next_obs` is the true final
    observation (`info["final_observation"]`), so agents bootstrap through time limits.
    """
    reset_fn, step_fn = _env_step_fns(env, env_params)
    B, T, W = config.num_envs, config.rollout_len, config.stop_window
    max_eval_steps = config.max_eval_steps or int(
        getattr(env_params, "max_steps_in_episode", 10_000)
    )

    def init(key: Key, hparams: Any) -> RunState:
        key, k_agent, k_reset = jax.random.split(key, 3)
        obs, env_state = reset_fn(jax.random.split(k_reset, B), env_params)
        agent_state = agent.init(k_agent, hparams, obs[0])
        return RunState(
            agent=agent_state,
            env_state=env_state,
            obs=obs,
            episode_return=jnp.zeros((B,), jnp.float32),
            episode_length=jnp.zeros((B,), jnp.int32),
            recent_returns=jnp.full((W,), jnp.nan, jnp.float32),
            num_episodes=jnp.int32(0),
            env_steps=jnp.int32(0),
            stopped=jnp.bool_(False),
            stop_step=jnp.int32(-1),
            key=key,
        )

    def env_step(carry, _):
        state, acc = carry
        key, k_act, k_step = jax.random.split(state.key, 3)
        action = agent.act(state.agent, state.obs, k_act)
        next_obs, env_state, reward, terminated, truncated, info = step_fn(
            jax.random.split(k_step, B), state.env_state, action, env_params
        )
        reward = reward.astype(jnp.float32)
        done = jnp.logical_or(terminated, truncated)
        transition = Transition(
            obs=state.obs,
            action=action,
            reward=reward,
            discount=1.0 - terminated.astype(jnp.float32),
            next_obs=info["final_observation"],
            done=done,
        )
        ep_return = state.episode_return + reward
        ep_length = state.episode_length + 1
        # Completed episodes enter the stopping window in environment order.
        slot = jnp.where(done, (state.num_episodes + jnp.cumsum(done) - 1) % W, W)
        recent = state.recent_returns.at[slot].set(ep_return, mode="drop")
        acc = acc._replace(
            return_sum=acc.return_sum + jnp.sum(jnp.where(done, ep_return, 0.0)),
            return_min=jnp.minimum(acc.return_min, jnp.min(jnp.where(done, ep_return, jnp.inf))),
            return_max=jnp.maximum(acc.return_max, jnp.max(jnp.where(done, ep_return, -jnp.inf))),
            length_sum=acc.length_sum + jnp.sum(jnp.where(done, ep_length, 0)),
            episodes=acc.episodes + jnp.sum(done, dtype=jnp.int32),
        )
        state = state._replace(
            env_state=env_state,
            obs=next_obs,
            episode_return=jnp.where(done, 0.0, ep_return),
            episode_length=jnp.where(done, 0, ep_length),
            recent_returns=recent,
            num_episodes=state.num_episodes + jnp.sum(done, dtype=jnp.int32),
            env_steps=state.env_steps + B,
            key=key,
        )
        return (state, acc), transition

    def update_step(carry, _):
        (state, acc), rollout = jax.lax.scan(env_step, carry, None, length=T)
        key, k_update = jax.random.split(state.key)
        agent_state, agent_metrics = agent.update(state.agent, rollout, k_update)
        acc = acc._replace(
            agent_metrics=jax.tree.map(
                lambda a, m: a + jnp.asarray(m, jnp.float32), acc.agent_metrics, agent_metrics
            )
        )
        state = state._replace(agent=agent_state, key=key)
        if config.stop_return is not None and config.stop_on == "train":
            met = (state.num_episodes >= W) & (jnp.mean(state.recent_returns) > config.stop_return)
            first = met & ~state.stopped
            state = state._replace(
                stopped=state.stopped | met,
                stop_step=jnp.where(first, state.env_steps, state.stop_step),
            )
        return (state, acc), None

    def empty_acc(state: RunState) -> _ChunkAcc:
        rollout_shape = jax.eval_shape(
            lambda s: jax.lax.scan(env_step, (s, _zero_acc({})), None, length=T)[1], state
        )
        metric_shape = jax.eval_shape(
            lambda s, r: agent.update(s.agent, r, s.key)[1], state, rollout_shape
        )
        return _zero_acc(jax.tree.map(lambda _: jnp.float32(0.0), metric_shape))

    def chunk(state: RunState) -> tuple[RunState, Metrics]:
        (state, acc), _ = jax.lax.scan(
            update_step, (state, empty_acc(state)), None, length=config.updates_per_chunk
        )
        has = acc.episodes > 0
        nan = jnp.float32(jnp.nan)
        metrics = {
            "env_steps": state.env_steps,
            "episodes": acc.episodes,
            "episode_return_mean": jnp.where(
                has, acc.return_sum / jnp.maximum(acc.episodes, 1), nan
            ),
            "episode_return_min": jnp.where(has, acc.return_min, nan),
            "episode_return_max": jnp.where(has, acc.return_max, nan),
            "episode_length_mean": jnp.where(
                has, acc.length_sum / jnp.maximum(acc.episodes, 1), nan
            ),
        }
        for name, total in acc.agent_metrics.items():
            metrics[name] = total / config.updates_per_chunk
        if config.stop_return is not None and config.stop_on == "greedy":
            key, k_eval = jax.random.split(state.key)
            greedy = jnp.mean(evaluate(state.agent, k_eval))
            met = greedy > config.stop_return
            state = state._replace(
                key=key,
                stopped=state.stopped | met,
                stop_step=jnp.where(met & ~state.stopped, state.env_steps, state.stop_step),
            )
            metrics["greedy_return"] = greedy
        return state, metrics

    def run_chunk(state: RunState) -> tuple[RunState, Metrics]:
        """Run `updates_per_chunk` updates; return the new state and one row of metrics.

        A run whose stopping criterion was met is left as it is (its row is blank: NaN,
        or -1 for counts), so that a `vmap`ped batch can go on while some seeds stopped.
        """
        if config.stop_return is None:
            return chunk(state)

        def skip(state):
            row = jax.eval_shape(lambda s: chunk(s)[1], state)
            return state, jax.tree.map(lambda r: jnp.full(r.shape, _blank(r.dtype), r.dtype), row)

        return jax.lax.cond(state.stopped, skip, chunk, state)

    def evaluate(agent_state: AgentState, key: Key) -> Array:
        """Greedy returns of `eval_episodes` episodes run in parallel: `[eval_episodes]`."""
        E = config.eval_episodes
        key, k_reset = jax.random.split(key)
        obs, env_state = reset_fn(jax.random.split(k_reset, E), env_params)
        init = (obs, env_state, jnp.zeros((E,), jnp.float32), jnp.zeros((E,), bool), key, 0)

        def cond(carry):
            *_, done, _, t = carry
            return (~jnp.all(done)) & (t < max_eval_steps)

        def body(carry):
            obs, env_state, returns, done, key, t = carry
            key, k_act, k_step = jax.random.split(key, 3)
            action = agent.act(agent_state, obs, k_act, greedy=True)
            obs, env_state, reward, terminated, truncated, _ = step_fn(
                jax.random.split(k_step, E), env_state, action, env_params
            )
            returns = returns + jnp.where(done, 0.0, reward.astype(jnp.float32))
            done = done | terminated | truncated
            return obs, env_state, returns, done, key, t + 1

        return jax.lax.while_loop(cond, body, init)[2]

    return Trainer(init=init, run_chunk=run_chunk, evaluate=evaluate, config=config)


def _zero_acc(agent_metrics: Metrics) -> _ChunkAcc:
    return _ChunkAcc(
        return_sum=jnp.float32(0.0),
        return_min=jnp.float32(jnp.inf),
        return_max=jnp.float32(-jnp.inf),
        length_sum=jnp.int32(0),
        episodes=jnp.int32(0),
        agent_metrics=agent_metrics,
    )


def make_train(
    agent: Agent, env: Any, env_params: Any, config: TrainConfig
) -> Callable[[Key, Any], TrainOutput]:
    """Return a pure `train(key, hparams) -> TrainOutput`.

    `train` runs `config.num_chunks` chunks of `config.updates_per_chunk` updates (each
    update: `T` steps of `B` environments, then `agent.update`), then evaluates the greedy
    policy on `config.eval_episodes` episodes. It closes over nothing random and nothing
    numeric that one might sweep: `jax.jit(jax.vmap(train))(keys, hparams)` trains a batch
    of seeds and hyperparameter settings (leaves `[S, ...]`) in one compiled program.
    With `config.stop_return`, each seed stops at the end of the chunk in which its
    criterion was met (a `while_loop`; under `vmap` it runs until every seed stopped).
    """
    trainer = make_trainer(agent, env, env_params, config)
    n = config.num_chunks

    def train(key: Key, hparams: Any) -> TrainOutput:
        key, k_init, k_eval = jax.random.split(key, 3)
        state = trainer.init(k_init, hparams)
        if config.stop_return is None:
            state, metrics = jax.lax.scan(lambda s, _: trainer.run_chunk(s), state, None, length=n)
        else:
            row = jax.eval_shape(lambda s: trainer.run_chunk(s)[1], state)
            table = jax.tree.map(lambda r: jnp.full((n, *r.shape), _blank(r.dtype), r.dtype), row)

            def cond(carry):
                i, s, _ = carry
                return (i < n) & ~s.stopped

            def body(carry):
                i, s, table = carry
                s, m = trainer.run_chunk(s)
                table = jax.tree.map(lambda t, v: t.at[i].set(v), table, m)
                return i + 1, s, table

            _, state, metrics = jax.lax.while_loop(cond, body, (0, state, table))
        eval_returns = trainer.evaluate(state.agent, k_eval)
        return TrainOutput(state=state, metrics=metrics, eval_returns=eval_returns)

    return train


def _blank(dtype: Any) -> Any:
    return jnp.nan if jnp.issubdtype(dtype, jnp.floating) else -1


def tile_hparams(hparams: Any, n: int) -> Any:
    """Stack `n` copies of `hparams` (leaves become `[n, ...]`) for `jax.vmap(train)`.

    Leaves get plain (not weakly typed) dtypes, so batches built from Python numbers and from
    arrays hit the same compiled program.
    """

    def tile(x):
        x = jnp.asarray(np.asarray(x))
        return jnp.broadcast_to(x, (n, *x.shape))

    return jax.tree.map(tile, hparams)


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

    def step(carry, k):
        obs, state, done = carry
        k_act, k_step = jax.random.split(k)
        action = agent.act(agent_state, obs[None], k_act, greedy=True)[0]
        obs2, state2, reward, terminated, _ = env.step_env(k_step, state, action, env_params)
        ended = done | terminated | env.is_truncated(state2, env_params)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(done, b, a), new, old)  # noqa: E731
        carry = (keep(obs2, obs), keep(state2, state), ended)
        return carry, (state, jnp.where(done, 0.0, reward), ~done)

    (_, last, _), (states, rewards, alive) = jax.lax.scan(
        step, (obs, state, jnp.bool_(False)), jax.random.split(key, max_steps)
    )
    states = jax.tree.map(lambda s, x: jnp.concatenate([s, x[None]]), states, last)
    return states, rewards, jnp.sum(alive)
