"""A3C with real threads: `K` Python threads, one lock, no emulation.

For users who want to watch true asynchrony on a multi-core machine. Each thread is an
actor-learner with its own environments and its own copy of the parameters; it runs one
jitted rollout-and-gradient call (the driver's `run_chunk` with an agent whose `update`
only computes `rljax.algos.a2c.rollout_gradient`), then takes the lock, applies its gradient to
the global parameters and the shared optimizer state as one optimizer step, and, every
`sync_every` of its own rounds, copies the global parameters back. JAX releases Python's
GIL while compiled code runs, so the threads' rollouts overlap in time.

Nondeterministic by nature: the order in which gradients reach the global parameters
depends on the operating system's scheduling, so two runs with the same key differ (except
with one thread). For reproducible, `vmap`pable A3C use `rljax.algos.a3c`, which emulates this
interleaving with a seeded order.
"""

from __future__ import annotations

import threading
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rljax import optim
from rljax.algos.a2c import apply_gradient, make_network, rollout_gradient
from rljax.algos.a3c import A3CConfig, A3CHParams
from rljax.core.config import TrainConfig
from rljax.core.driver import host_metrics, make_trainer
from rljax.core.types import Agent, Array, EnvSpec, Key, Transition, env_spec
from rljax.core.validation import as_leaves
from rljax.exploration import softmax_policy
from rljax.nets import ActorCritic


class ThreadedResult(NamedTuple):
    """What `train_threaded` returns."""

    params: Any  # the global parameters at the end
    opt_state: Any
    optimizer_steps: int  # gradients applied to the global parameters
    staleness: np.ndarray  # [optimizer_steps], global steps between a copy and its use
    learner_of_step: np.ndarray  # [optimizer_steps], which learner each step came from
    episode_returns: list[list[float]]  # per learner: mean return of each round, NaN if none
    seconds: float


class _LearnerState(NamedTuple):
    params: Any  # this learner's local copy
    grads: Any  # gradient of its last rollout, taken at `params`
    hparams: A3CHParams


def _gradient_agent(config: A3CConfig, spec: EnvSpec) -> Agent:
    """An agent whose `update` computes the A2C gradient at its local parameters and keeps
    it, applying nothing: the thread applies it to the global parameters."""
    network = make_network(config, spec)

    def init(key: Key, hparams: A3CHParams, obs: Array) -> _LearnerState:
        params = network.init(key, obs)
        return _LearnerState(params, jax.tree.map(jnp.zeros_like, params), as_leaves(hparams))

    def act(state: _LearnerState, obs: Array, key: Key, greedy: bool = False) -> Array:
        logits = network.apply(state.params, obs, method=ActorCritic.policy)
        return softmax_policy(key, logits, greedy)

    def update(state: _LearnerState, rollout: Transition, key: Key):
        del key
        grads, metrics = rollout_gradient(network, state.params, rollout, state.hparams)
        return state._replace(grads=grads), metrics

    return Agent(init=init, act=act, update=update)


def train_threaded(
    config: A3CConfig,
    env: Any,
    env_params: Any,
    hparams: A3CHParams,
    key: Key,
    *,
    envs_per_learner: int,
    rollout_len: int,
    rounds_per_learner: int,
) -> ThreadedResult:
    """Train A3C with `config.num_learners` threads sharing one global parameter set.

    Each learner runs `rounds_per_learner` rounds; a round is `rollout_len` steps of its
    `envs_per_learner` environments `[T, N]`, one gradient at its local parameters, one
    optimizer step on the global parameters under the lock, and, when its round count is a
    multiple of `hparams.sync_every`, a fresh local copy. Hyperparameters are concrete here
    (one setting per call). Any exception in a thread is raised in the caller.
    """
    for name, value in (
        ("envs_per_learner", envs_per_learner),
        ("rollout_len", rollout_len),
        ("rounds_per_learner", rounds_per_learner),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"train_threaded: {name} must be an integer >= 1, got {value!r}")
    K = config.num_learners
    sync_every = round(float(hparams.sync_every))
    steps = envs_per_learner * rollout_len
    train = TrainConfig(
        total_env_steps=steps * rounds_per_learner,
        num_envs=envs_per_learner,
        rollout_len=rollout_len,
        chunk_env_steps=steps,
    )
    trainer = make_trainer(
        _gradient_agent(config, env_spec(env, env_params)), env, env_params, train
    )
    keys = jax.random.split(key, K)
    states = [jax.jit(trainer.init)(k, hparams) for k in keys]
    params = states[0].agent.params  # every local copy starts as the global parameters
    states = [s._replace(agent=s.agent._replace(params=params)) for s in states]
    opt_state = optim.init(params, states[0].agent.hparams.learning_rate)
    shared = {"params": params, "opt_state": opt_state, "steps": 0}
    # Compiled once, before the threads start.
    run_round = jax.jit(trainer.run_chunk).lower(states[0]).compile()
    apply = (
        jax.jit(apply_gradient)
        .lower(params, shared["opt_state"], states[0].agent.grads, states[0].agent.hparams)
        .compile()
    )
    lock = threading.Lock()
    staleness: list[int] = []
    learner_of_step: list[int] = []
    returns: list[list[float]] = [[] for _ in range(K)]
    errors: list[BaseException] = []

    def learner(k: int) -> None:
        try:
            state, version = states[k], 0
            for r in range(rounds_per_learner):
                state, metrics = run_round(state)
                jax.block_until_ready(state.agent.grads)
                returns[k].append(float(host_metrics(metrics)["episode_return_mean"]))
                with lock:
                    shared["params"], shared["opt_state"] = apply(
                        shared["params"],
                        shared["opt_state"],
                        state.agent.grads,
                        state.agent.hparams,
                    )
                    staleness.append(shared["steps"] - version)
                    learner_of_step.append(k)
                    shared["steps"] += 1
                    if (r + 1) % sync_every == 0:
                        version = shared["steps"]
                        state = state._replace(agent=state.agent._replace(params=shared["params"]))
        except BaseException as e:  # re-raised in the caller
            errors.append(e)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=learner, args=(k,), name=f"a3c-{k}") for k in range(K)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return ThreadedResult(
        params=shared["params"],
        opt_state=shared["opt_state"],
        optimizer_steps=shared["steps"],
        staleness=np.asarray(staleness),
        learner_of_step=np.asarray(learner_of_step),
        episode_returns=returns,
        seconds=time.perf_counter() - t0,
    )
