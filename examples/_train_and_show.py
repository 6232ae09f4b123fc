"""Shared by the Pacman and actor-critic examples: train an algorithm for several seeds,
plot, animate."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

import rljax
from rljax.run import registry
from rljax.run.loop import print_progress, run_batch
from rljax.run.plotting import plot_learning_curves


def parse(
    description: str,
    default_env: str,
    envs: list[str],
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    if extra is not None:
        extra(parser)
    parser.add_argument("--env", default=default_env, choices=envs)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=None, help="env steps per seed (preset's)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    return args


def train_and_show(
    algo: str, preset: str, args: argparse.Namespace, render: Callable | None = None
) -> None:
    """Train `args.seeds` seeds, print their greedy returns, save `curve.png` and, with
    `render(states, path, title) -> path` (by default the environment's `render_episode`,
    if it has one), an animation of the best seed's greedy episode."""
    overrides = {} if args.steps is None else {"total_env_steps": str(args.steps)}
    exp = registry.make_experiment(algo, args.env, preset, overrides)
    out = Path(args.out or f"runs/{algo}_{args.env}")
    out.mkdir(parents=True, exist_ok=True)
    keys = jax.random.split(jax.random.key(0), args.seeds)
    print(f"{algo} on {args.env}: {args.seeds} seeds x {exp.train_config.total_env_steps:,} steps")
    result = run_batch(
        exp.trainer, keys, rljax.tile_hparams(exp.hparams, args.seeds), print_progress()
    )
    greedy = result.eval_returns.mean(axis=1)
    stop_steps = np.asarray(result.state.stop_step)
    for i, g in enumerate(greedy):
        stop = f", stopping rule met at step {stop_steps[i]:,}" if stop_steps[i] >= 0 else ""
        print(f"  seed {i}: greedy return {g:7.2f}{stop}")
    print(f"compile {result.compile_seconds:.1f} s, training {result.train_seconds:.1f} s")
    m = result.metrics
    plot_learning_curves(
        {algo: (m["env_steps"], m["episode_return_mean"])},
        out / "curve.png",
        title=f"{algo} on {args.env}, {args.seeds} seeds",
    )
    env, params = exp.env, exp.env_params
    best = int(np.argmax(greedy))
    agent_state = jax.tree.map(lambda x: x[best], result.state.agent)
    limit = exp.train_config.max_eval_steps or int(getattr(params, "max_steps_in_episode", 500))
    agent = exp.agent
    states, rewards, length = jax.jit(
        lambda s, k: rljax.greedy_episode(agent, env, params, s, k, limit)
    )(agent_state, jax.random.key(1))
    n = int(length)
    print(f"greedy episode of seed {best}: {n} steps, return {float(rewards.sum()):.2f}")
    render = render or getattr(env, "render_episode", None)
    if render is not None:
        episode = jax.tree.map(lambda x: x[: n + 1], states)
        print(f"animation: {render(episode, out / 'episode.gif', f'{algo}, seed {best}')}")
    print(f"curve: {out / 'curve.png'}")
