"""Train DQN on CartPole-v1 for several seeds at once, then save, reload and evaluate.

    python examples/dqn_cartpole.py                     # 8 seeds, the default preset
    python examples/dqn_cartpole.py --preset course     # the course's settings
    python examples/dqn_cartpole.py --seeds 2 --steps 20000 --out runs/quick

Writes to the output folder: `curve.png` (episode return vs environment steps, mean and
min-max over seeds), `params.ckpt` (the trained Q-networks of every seed), `results.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import jax
import numpy as np

import rljax
from rljax import dqn
from rljax.run import checkpoint
from rljax.run.loop import eval_keys, jitted, print_progress, run_batch
from rljax.run.plotting import plot_learning_curves


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", choices=sorted(dqn.PRESETS))
    parser.add_argument("--seeds", type=int, default=8, help="seeds trained at once (vmapped)")
    parser.add_argument("--steps", type=int, default=None, help="env steps per seed (preset's)")
    parser.add_argument("--seed", type=int, default=0, help="base PRNG seed")
    parser.add_argument("--out", default="runs/dqn_cartpole", help="output folder")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    preset = dqn.preset(args.preset)
    train_config = preset.train_config
    if args.steps is not None:
        chunk = min(train_config.chunk_env_steps, args.steps)
        try:
            train_config = dataclasses.replace(
                train_config, total_env_steps=args.steps, chunk_env_steps=chunk
            )
        except ValueError as e:
            sys.exit(f"--steps {args.steps}: {e}")

    env, env_params = rljax.make("CartPole-v1")
    agent = dqn.make_dqn(preset.config, rljax.env_spec(env, env_params))
    trainer = rljax.make_trainer(agent, env, env_params, train_config)
    keys = jax.random.split(jax.random.key(args.seed), args.seeds)
    hparams = rljax.tile_hparams(preset.hparams, args.seeds)

    print(
        f"DQN ({args.preset}) on CartPole-v1: {args.seeds} seeds x "
        f"{train_config.total_env_steps:,} steps, {jax.default_backend()} backend"
    )
    result = run_batch(trainer, keys, hparams, on_chunk=print_progress())

    # Save the trained parameters, reload them into fresh agents, evaluate again.
    params_path = checkpoint.save(out / "params.ckpt", result.state.agent.params)
    init, _, evaluate = jitted(trainer)
    fresh = init(keys, hparams).agent
    reloaded = fresh._replace(params=checkpoint.load(params_path, fresh.params))
    again = np.asarray(evaluate(reloaded, eval_keys(keys)))
    same = np.array_equal(again, result.eval_returns)

    steps = np.asarray(result.state.env_steps)
    stop = np.asarray(result.state.stop_step)
    print(f"\n{'seed':>4}  {'greedy return':>15}  {'env steps':>9}  {'solved at':>9}")
    for i, returns in enumerate(result.eval_returns):
        solved = f"{stop[i]:,}" if stop[i] >= 0 else "-"
        print(f"{i:>4}  {returns.mean():8.1f} ± {returns.std():4.1f}  {steps[i]:>9,}  {solved:>9}")
    ok = int((result.eval_returns.mean(axis=1) >= 475).sum())
    print(
        f"\n{ok}/{args.seeds} seeds average >= 475 over {result.eval_returns.shape[1]} greedy "
        f"episodes; compile {result.compile_seconds:.1f} s, training {result.train_seconds:.1f} s "
        f"({args.seeds * steps.mean() / result.train_seconds:,.0f} env steps/s over all seeds)"
    )
    verdict = "identical" if same else "DIFFER"
    print(f"reloaded parameters from {params_path}: greedy returns {verdict}")

    plot_learning_curves(
        {
            f"DQN {args.preset}": (
                result.metrics["env_steps"],
                result.metrics["episode_return_mean"],
            )
        },
        out / "curve.png",
        title=f"DQN on CartPole-v1, {args.seeds} seeds",
        reference=500.0,
    )
    summary = {
        "preset": args.preset,
        "seeds": args.seeds,
        "env_steps_per_seed": steps.tolist(),
        "solved_at_step": stop.tolist(),
        "eval_return_per_seed": result.eval_returns.mean(axis=1).tolist(),
        "compile_seconds": result.compile_seconds,
        "train_seconds": result.train_seconds,
        "reload_identical": bool(same),
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"curve: {out / 'curve.png'}  results: {out / 'results.json'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
