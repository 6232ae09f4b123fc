"""The one training driver: environment loop, rollouts, updates, episode statistics, evaluation.

`make_trainer` builds the pieces (`init`, `run_chunk`, `evaluate`) that a host-side runner
can call chunk by chunk; `make_train` composes them into one pure `train(key, hparams)`
that can be `jit`ted and `vmap`ped over seeds and hyperparameters at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rljax.core.config import TrainConfig
from rljax.core.evaluation import default_max_steps, env_batch_fns, make_evaluate
from rljax.core.keys import STREAM_ACT, STREAM_ENV, STREAM_EVAL, STREAM_UPDATE, draw_key
from rljax.core.types import Agent, AgentState, Array, Key, Metrics, PyTree, Transition


class RunState(NamedTuple):
    """Everything a run carries from one update to the next (one seed)."""

    agent: AgentState
    env_state: PyTree  # leaves [B, ...]
    obs: Array  # [B, *obs_shape]
    episode_return: Array  # [B], return of the episode in progress
    episode_length: Array  # [B], int32
    recent_returns: Array  # [stop_window], last completed returns (ring), 0 until written
    num_episodes: Array  # shape=(), int32, completed episodes so far
    env_steps: Array  # shape=(), int32
    stopped: Array  # shape=(), bool, the stopping criterion was met
    stop_step: Array  # shape=(), int32, env step at which it was met, -1 if never
    key: Key  # the run's own, fixed after `init`; each draw folds in its stream and step


class TrainOutput(NamedTuple):
    """What `train` returns. Under `vmap` every leaf gains a leading seed axis `[S, ...]`."""

    state: RunState
    metrics: Metrics  # each [num_chunks]; see `host_metrics` for the NaN-marked table
    eval_returns: Array  # [eval_episodes], greedy returns at the end


class Trainer(NamedTuple):
    """The driver's pieces, each pure and jittable; `train` is `init`, chunks, `evaluate`."""

    init: Callable[[Key, Any], RunState]
    run_chunk: Callable[[RunState], tuple[RunState, Metrics]]
    evaluate: Callable[[AgentState, Key], Array]
    config: TrainConfig
    # What the pieces were built from, as a key (`rljax.run.programs`): set by the registry
    # so that their traced programs can be kept on disk; None for hand-built trainers.
    fingerprint: str | None = None
    # With the greedy stopping rule (`stop_on="greedy"`), `run_chunk` in its two parts, so
    # that a host-side runner compiles the rule's evaluation once, as `evaluate` (which the
    # final evaluation uses too), and not inside the chunk as well: `train_chunk` and
    # `greedy_stop` (see `make_trainer`). None otherwise.
    train_chunk: Callable[[RunState], tuple[RunState, Metrics, Key]] | None = None
    greedy_stop: Callable[[Array, Array, Array, Array], tuple[Array, Array, Array]] | None = None


class _ChunkAcc(NamedTuple):
    return_sum: Array
    return_min: Array
    return_max: Array
    length_sum: Array
    episodes: Array


def make_trainer(agent: Agent, env: Any, env_params: Any, config: TrainConfig) -> Trainer:
    """Build the driver's pieces for `agent` on `env` (gymnax API, 6-value `step`).

    Per update the driver steps `B = num_envs` environments for `T = rollout_len` steps with
    `agent.act`, hands the rollout (a `Transition` with leaves `[T, B, ...]`) to
    `agent.update`, and accumulates the returns and lengths of completed episodes.
    `discount` is 0 only on termination; on truncation `next_obs` is the true final
    observation (`info["final_observation"]`), so agents bootstrap through time limits.
    Randomness: the key of every draw is `draw_key(state.key, stream, state.env_steps)`
    (`rljax.core.keys`), one stream each for actions, environment steps, updates and the
    greedy stopping rule's evaluation; the run's key itself never changes after `init`.
    """
    reset_fn, step_fn = env_batch_fns(env)
    B, T, W = config.num_envs, config.rollout_len, config.stop_window
    max_eval_steps = config.max_eval_steps or default_max_steps(env_params)
    evaluate = make_evaluate(agent, env, env_params, config.eval_episodes, max_eval_steps)

    def init(key: Key, hparams: Any) -> RunState:
        key, k_agent, k_reset = jax.random.split(key, 3)
        obs, env_state = reset_fn(jax.random.split(k_reset, B), env_params)
        agent_state = agent.init(k_agent, hparams, obs)
        return RunState(
            agent=agent_state,
            env_state=env_state,
            obs=obs,
            episode_return=jnp.zeros((B,), jnp.float32),
            episode_length=jnp.zeros((B,), jnp.int32),
            recent_returns=jnp.zeros((W,), jnp.float32),
            num_episodes=jnp.int32(0),
            env_steps=jnp.int32(0),
            stopped=jnp.bool_(False),
            stop_step=jnp.int32(-1),
            key=key,
        )

    def env_step(carry, _):
        state, acc = carry
        k_act = draw_key(state.key, STREAM_ACT, state.env_steps)
        k_step = draw_key(state.key, STREAM_ENV, state.env_steps)
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
        )
        return (state, acc), transition

    def update_step(carry, _):
        (state, acc), rollout = jax.lax.scan(env_step, carry, None, length=T)
        k_update = draw_key(state.key, STREAM_UPDATE, state.env_steps)
        agent_state, agent_metrics = agent.update(state.agent, rollout, k_update)
        state = state._replace(agent=agent_state)
        if config.stop_return is not None and config.stop_on == "train":
            met = (state.num_episodes >= W) & (jnp.mean(state.recent_returns) > config.stop_return)
            first = met & ~state.stopped
            state = state._replace(
                stopped=state.stopped | met,
                stop_step=jnp.where(first, state.env_steps, state.stop_step),
            )
        return (state, acc), jax.tree.map(lambda m: jnp.asarray(m, jnp.float32), agent_metrics)

    def chunk(state: RunState) -> tuple[RunState, Metrics]:
        (state, acc), per_update = jax.lax.scan(
            update_step, (state, _zero_acc()), None, length=config.updates_per_chunk
        )
        # The agent's metrics of each update come out stacked `[U]` and are summed in update
        # order (a carried sum would need their shapes first: tracing the rollout and the
        # update once more, a third of the chunk's tracing time for A2C).
        agent_totals, _ = jax.lax.scan(
            lambda total, m: (jax.tree.map(jnp.add, total, m), None),
            jax.tree.map(lambda m: jnp.zeros(m.shape[1:], m.dtype), per_update),
            per_update,
            length=config.updates_per_chunk,
        )
        # No NaN on the device (jax_debug_nans stays usable): where no episode ended the
        # statistics are 0 and `episodes` is 0; `host_metrics` marks them NaN.
        has = acc.episodes > 0
        count = jnp.maximum(acc.episodes, 1)
        metrics = {
            "env_steps": state.env_steps,
            "episodes": acc.episodes,
            "episode_return_mean": acc.return_sum / count,
            "episode_return_min": jnp.where(has, acc.return_min, 0.0),
            "episode_return_max": jnp.where(has, acc.return_max, 0.0),
            "episode_length_mean": acc.length_sum / count,
        }
        for name, total in agent_totals.items():
            metrics[name] = total / config.updates_per_chunk
        return state, metrics

    def freeze_stopped(state: RunState, new: RunState, row: Metrics) -> tuple[RunState, Metrics]:
        """Runs stopped before the chunk keep their state, but for the key, and a blank row
        (`env_steps` -1, other counts -1, values 0), so that a `vmap`ped batch can go on
        while some runs stopped. Under `vmap` a `lax.cond` computes both branches anyway,
        so the chunk is computed and its result discarded by a select. The key always moves
        on (a stopped run never uses it again), so that each key is used once
        (`jax_debug_key_reuse`)."""
        blank = jax.tree.map(lambda r: jnp.full(r.shape, _blank(r.dtype), r.dtype), row)
        pick = lambda old, fresh: jnp.where(state.stopped, old, fresh)  # noqa: E731
        kept = jax.tree.map(pick, state._replace(key=None), new._replace(key=None))
        return kept._replace(key=new.key), jax.tree.map(pick, blank, row)

    def train_chunk(state: RunState) -> tuple[RunState, Metrics, Key]:
        """`run_chunk` without the greedy stopping rule's check: the chunk's updates (runs
        stopped before it left as they are), its row, and the key of the check's
        evaluation, `draw_key(key, STREAM_EVAL, env_steps)` after the chunk."""
        state, row = freeze_stopped(state, *chunk(state))
        return state, row, draw_key(state.key, STREAM_EVAL, state.env_steps)

    def greedy_stop(
        stopped: Array, stop_step: Array, env_steps: Array, returns: Array
    ) -> tuple[Array, Array, Array]:
        """The greedy stopping rule after a chunk, from `returns [eval_episodes]` (the
        greedy episodes of `evaluate`): a run stops once their mean exceeds `stop_return`,
        and `stop_step` records the step it first did. Returns the new `stopped`,
        `stop_step` and the mean (the `greedy_return` metric; 0, blank, for a run stopped
        before the chunk: `stopped` is still the value the chunk began with)."""
        greedy = jnp.mean(returns)
        met = greedy > config.stop_return
        new_step = jnp.where(met & ~stopped, env_steps, stop_step)
        return stopped | met, new_step, jnp.where(stopped, 0.0, greedy)

    def run_chunk(state: RunState) -> tuple[RunState, Metrics]:
        """Run `updates_per_chunk` updates; return the new state and one row of metrics.

        With a stopping rule, runs that met it before the chunk are left as they are
        (`freeze_stopped`). The greedy rule (`stop_on="greedy"`) then plays
        `eval_episodes` greedy episodes (`evaluate`, keyed by the `STREAM_EVAL` draw at
        the chunk's last step) and reports their mean as `greedy_return`: `train_chunk`,
        `evaluate` and `greedy_stop` in turn (`greedy_chunk`).
        """
        if config.stop_return is None:
            return chunk(state)
        if config.stop_on == "train":
            return freeze_stopped(state, *chunk(state))
        return greedy_chunk(train_chunk, evaluate, greedy_stop, state)

    greedy = config.stop_return is not None and config.stop_on == "greedy"
    return Trainer(
        init=init,
        run_chunk=run_chunk,
        evaluate=evaluate,
        config=config,
        train_chunk=train_chunk if greedy else None,
        greedy_stop=greedy_stop if greedy else None,
    )


def greedy_chunk(
    train_chunk: Callable, evaluate: Callable, greedy_stop: Callable, state: RunState
) -> tuple[RunState, Metrics]:
    """One chunk under the greedy stopping rule from its three parts (a `Trainer`'s
    `train_chunk`, `evaluate` and `greedy_stop`, or their compiled programs, vmapped over
    runs alike): the chunk's updates, the greedy episodes, then the rule. Returns the new
    state and the row, with `greedy_return`."""
    new, row, k_eval = train_chunk(state)
    stopped, stop_step, greedy = greedy_stop(
        new.stopped, new.stop_step, new.env_steps, evaluate(new.agent, k_eval)
    )
    return new._replace(stopped=stopped, stop_step=stop_step), {**row, "greedy_return": greedy}


def _zero_acc() -> _ChunkAcc:
    return _ChunkAcc(
        return_sum=jnp.float32(0.0),
        return_min=jnp.float32(jnp.inf),
        return_max=jnp.float32(-jnp.inf),
        length_sum=jnp.int32(0),
        episodes=jnp.int32(0),
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
    return 0.0 if jnp.issubdtype(dtype, jnp.floating) else -1


EPISODE_STATISTICS = (
    "episode_return_mean",
    "episode_return_min",
    "episode_return_max",
    "episode_length_mean",
)


def host_metrics(metrics: Metrics) -> dict[str, np.ndarray]:
    """The driver's metrics (leaves `[..., chunks]`, e.g. `TrainOutput.metrics`) as NumPy
    arrays with NaN marking what has no value: episode statistics of chunks in which no
    episode ended, and every float of chunks a stopped run did not run (`env_steps` -1).
    On the device these are 0, so that `jax_debug_nans` can watch training."""
    out = {k: np.array(v) for k, v in jax.device_get(dict(metrics)).items()}
    ran = out["env_steps"] >= 0
    ended = ran & (out["episodes"] > 0)
    for name, value in out.items():
        if np.issubdtype(value.dtype, np.floating):
            mask = ended if name in EPISODE_STATISTICS else ran
            out[name] = np.where(mask, value, np.nan)
    return out


def tile_hparams(hparams: Any, n: int) -> Any:
    """Stack `n` copies of `hparams` (leaves become `[n, ...]`) for `jax.vmap(train)`.

    Leaves get plain (not weakly typed) dtypes, so batches built from Python numbers and from
    arrays hit the same compiled program.
    """

    def tile(x):
        # On the host, in JAX's dtype, contiguous, then copied over: converting a dtype or
        # broadcasting a zero-stride view on the device, or `jnp.asarray`, compiles a
        # program per leaf dtype and shape, which a warm start would pay for.
        x = np.asarray(x)
        x = x.astype(jax.dtypes.canonicalize_dtype(x.dtype))  # float32 unless x64 is on
        return jax.device_put(np.repeat(x[None], n, axis=0))

    return jax.tree.map(tile, hparams)
