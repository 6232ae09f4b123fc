"""DQN, A2C and A3C on Breakout-MinAtar from pixels: greedy return per seed against a
random policy, learning curves, and throughput beside raw environment stepping.

    python benchmarks/breakout.py                      # the presets' budgets, 8 seeds
    python benchmarks/breakout.py --steps 2000000      # 2M env steps per seed (a GPU)
    python benchmarks/breakout.py --algos dqn --seeds 2 --steps 20000   # a quick check

For each algorithm's `breakout` preset: `--seeds` seeds trained in one compiled
`jit(vmap)` program (`rljax.run.loop.run_batch`); each seed's greedy mean return (32
episodes) against the mean return of a uniformly random policy (1,024 episodes, measured in
the same run); the target is at least 5x random on every seed. Also compile and training
seconds, and training env steps per second (all seeds, learning included) beside raw
Breakout-MinAtar stepping with as many environments (seeds x num_envs, random actions,
`jit`). `--steps` sets the env steps per seed (rounded to whole chunks of about 1/50 of the
run); the budget used is recorded. Writes `benchmarks/results/breakout.json` (naming the
device) and `breakout.png` beside it (the learning curves and the random policy's return),
and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import numpy as np
from _common import raw_env_throughput

import rljax
from rljax.core.evaluation import make_evaluate
from rljax.run import registry
from rljax.run.loop import print_progress, run_batch
from rljax.run.plotting import plot_learning_curves

HERE = Path(__file__).resolve().parent
ENV_ID = "Breakout-MinAtar"
ALGOS = ("dqn", "a2c", "a3c")
TARGET_RATIO = 5.0  # greedy return / random policy's return, on every seed
RANDOM_EPISODES = 1_024


def random_return(episodes: int = RANDOM_EPISODES) -> float:
    """Mean return of a uniformly random policy over `episodes` Breakout-MinAtar episodes
    (each to its end or the 1,000-step limit)."""
    env, params = rljax.make(ENV_ID)
    num_actions = env.action_space(params).n

    def act(state, obs, key, greedy=False):
        del state, greedy
        return jax.random.randint(key, obs.shape[:1], 0, num_actions)

    agent = rljax.Agent(init=None, act=act, update=None)
    limit = int(params.max_steps_in_episode)
    evaluate = jax.jit(make_evaluate(agent, env, params, episodes, limit))
    return float(np.mean(evaluate(None, jax.random.key(12345))))


def budget(steps: int, steps_per_update: int, chunks: int = 50) -> tuple[int, int]:
    """`(total_env_steps, chunk_env_steps)` closest to `steps` with about `chunks` chunks,
    each a whole number of updates."""
    chunk = steps_per_update * max(1, round(steps / chunks / steps_per_update))
    return chunk * max(1, round(steps / chunk)), chunk


def train(algo: str, seeds: int, steps: int | None) -> tuple[dict, dict]:
    """Train the `breakout` preset of `algo` for `seeds` seeds; returns its JSON row and its
    curve `(env_steps [S, C], episode_return_mean [S, C])`."""
    overrides = {}
    if steps is not None:
        tc = registry.make_experiment(algo, ENV_ID, "breakout").train_config
        total, chunk = budget(steps, tc.steps_per_update)
        overrides = {"total_env_steps": str(total), "chunk_env_steps": str(chunk)}
    exp = registry.make_experiment(algo, ENV_ID, "breakout", overrides)
    tc = exp.train_config
    print(f"{algo}: {seeds} seeds x {tc.total_env_steps:,} env steps ({tc.num_envs} envs each)")
    keys = jax.random.split(jax.random.key(0), seeds)
    result = run_batch(exp.trainer, keys, rljax.tile_hparams(exp.hparams, seeds), print_progress())
    batch = seeds * tc.num_envs
    raw = raw_env_throughput(ENV_ID, batch, max(20_000, 50 * batch))
    rate = seeds * tc.total_env_steps / result.train_seconds
    greedy = result.eval_returns.mean(axis=1)
    m = result.metrics
    last = m["episode_return_mean"][:, -max(1, m["episode_return_mean"].shape[1] // 10) :]
    row = {
        "seeds": seeds,
        "env_steps_per_seed": tc.total_env_steps,
        "num_envs_per_seed": tc.num_envs,
        "rollout_len": tc.rollout_len,
        "compile_seconds": round(result.compile_seconds, 1),
        "train_seconds": round(result.train_seconds, 1),
        "env_steps_per_second": round(rate),
        "raw_env_steps_per_second_same_batch": round(raw),
        "fraction_of_raw": round(rate / raw, 4),
        "greedy_return_per_seed": [round(float(g), 2) for g in greedy],
        "greedy_episodes_per_seed": int(result.eval_returns.shape[1]),
        "training_return_last_tenth_per_seed": [
            round(float(np.nanmean(r)), 2) if not np.isnan(r).all() else None for r in last
        ],
    }
    return row, (m["env_steps"], m["episode_return_mean"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", choices=ALGOS, default=list(ALGOS))
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=None, help="env steps per seed (preset's)")
    parser.add_argument("--out", default=str(HERE / "results" / "breakout.json"))
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.steps is not None and not 1 <= args.steps <= 2_000_000:
        parser.error(f"--steps must lie in [1, 2000000], got {args.steps}")

    device = jax.devices()[0]
    print(f"device: {device.device_kind} ({device.platform})")
    baseline = random_return()
    print(f"random policy: mean return {baseline:.3f} over {RANDOM_EPISODES:,} episodes")
    rows, curves = {}, {}
    for algo in args.algos:
        row, curve = train(algo, args.seeds, args.steps)
        greedy = np.array(row["greedy_return_per_seed"])
        row["ratio_to_random_per_seed"] = [round(float(g / baseline), 2) for g in greedy]
        row["every_seed_at_least_5x_random"] = bool(np.all(greedy >= TARGET_RATIO * baseline))
        rows[algo], curves[algo.upper()] = row, curve

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure = out.with_suffix(".png")
    plot_learning_curves(
        curves,
        figure,
        title=f"{ENV_ID}, {args.seeds} seeds (dashed: random policy)",
        reference=baseline,
    )
    results = {
        "command": " ".join(["python", "benchmarks/breakout.py", *sys.argv[1:]]),
        "device": {"kind": device.device_kind, "platform": device.platform},
        "versions": {"rljax": rljax.__version__, "jax": jax.__version__},
        "env": ENV_ID,
        "preset": "breakout",
        "random_policy": {"mean_return": round(baseline, 3), "episodes": RANDOM_EPISODES},
        "target": f"greedy return >= {TARGET_RATIO:g}x random on every seed",
        "figure": str(
            figure.relative_to(HERE.parent) if figure.is_relative_to(HERE.parent) else figure
        ),
        "algos": rows,
    }
    out.write_text(json.dumps(results, indent=2) + "\n")

    print(
        f"\n{'algo':<5} {'steps/seed':>10} {'greedy per seed':<44} {'min/random':>10} "
        f"{'train s':>8} {'steps/s':>9} {'raw steps/s':>11}"
    )
    for algo, r in rows.items():
        greedy = " ".join(f"{g:.1f}" for g in r["greedy_return_per_seed"])
        print(
            f"{algo:<5} {r['env_steps_per_seed']:>10,} {greedy:<44} "
            f"{min(r['ratio_to_random_per_seed']):>9.1f}x {r['train_seconds']:>8.1f} "
            f"{r['env_steps_per_second']:>9,} {r['raw_env_steps_per_second_same_batch']:>11,}"
        )
    print(f"random policy {baseline:.3f}; wrote {out} and {figure}")


if __name__ == "__main__":
    main()
