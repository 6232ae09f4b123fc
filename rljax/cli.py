"""The command line: `python -m rljax` (or `rljax`) train / eval / list / plot.

rljax train dqn CartPole-v1 --seeds 8 --out runs/dqn
rljax train sarsa GridWorld-v0 --set learning_rate=0.1 --set epsilon=0.2
rljax train dqn CartPole-v1 --out runs/dqn --resume       # continue from the newest checkpoint
rljax eval runs/dqn --episodes 64
rljax list
rljax plot runs/dqn runs/dqn_lecture --out compare.png
rljax train value_iteration GridWorld-v0 --set gamma=0.9   # dynamic programming
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

import rljax
from rljax import dp, experiment, runner, tabular

DP_ALGOS = ("policy_iteration", "value_iteration")


def _overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects name=value, got {pair!r}")
        name, value = pair.split("=", 1)
        out[name.strip()] = value.strip()
    return out


def _settings_as_overrides(saved: dict[str, Any]) -> dict[str, str]:
    """Every saved setting of a run folder as `--set` strings (to rebuild the experiment)."""
    out = {}
    for part in ("hparams", "config", "train"):
        for name, value in (saved.get(part) or {}).items():
            if isinstance(value, list | tuple):
                out[name] = ",".join(str(v) for v in value)
            else:
                out[name] = "none" if value is None else str(value)
    return out


def cmd_train(args: argparse.Namespace) -> int:
    overrides = _overrides(args.set)
    if args.steps is not None:
        overrides["total_env_steps"] = str(args.steps)
    if args.algo in DP_ALGOS:
        return _train_dp(args, overrides)
    exp = experiment.make_experiment(args.algo, args.env, args.preset, overrides)
    out = Path(args.out or f"runs/{args.algo}_{args.env}")
    print(f"{args.algo} on {args.env}: {args.seeds} seeds, {exp.train.total_env_steps:,} steps")
    result = runner.run_in_folder(
        exp,
        out,
        seeds=args.seeds,
        seed=args.seed,
        resume=args.resume,
        checkpoint_every=args.checkpoint_every,
        keep=args.keep,
        on_chunk=runner.print_progress(),
    )
    if result.get("interrupted"):
        print(f"\ninterrupted after chunk {result['chunk']}; resume with --resume --out {out}")
        return 130
    ev = result["eval_return"]
    print(
        f"greedy return per seed {np.round(ev['per_seed'], 1).tolist()} (mean {ev['mean']:.1f}); "
        f"compile {result['compile_seconds']:.1f} s, train {result['train_seconds']:.1f} s; "
        f"results in {out}/"
    )
    return 0


def _train_dp(args: argparse.Namespace, overrides: dict[str, str]) -> int:
    from rljax.envs.gridworld import GridWorld, render_ascii, render_values, transition_model

    env, params = rljax.make(args.env)
    if not isinstance(env, GridWorld):
        raise ValueError(
            f"{args.algo} needs an environment with an exact model (GridWorld), got {args.env}"
        )
    known = {"gamma": 0.9, "tol": 1e-6}
    for name in overrides:
        if name not in known:
            raise ValueError(
                f"unknown setting {name!r} for {args.algo}; valid settings: gamma, tol"
            )
    values = {k: float(overrides.get(k, v)) for k, v in known.items()}
    P, R, terminal = transition_model(env, params)
    t0 = time.perf_counter()
    solve = getattr(dp, args.algo)
    result = solve(P, R, terminal, values["gamma"], tol=values["tol"])
    seconds = time.perf_counter() - t0
    out = Path(args.out or f"runs/{args.algo}_{args.env}")
    out.mkdir(parents=True, exist_ok=True)
    print(render_ascii(result.V, result.policy, terminal))
    import matplotlib.pyplot as plt

    plt.close(render_values(result.V, result.policy, out / "values.png", args.algo))
    # The greedy policy, evaluated in the environment itself.
    cfg = tabular.TabularConfig.for_env(env, params)
    agent = tabular.make_td_prediction(cfg, result.policy)
    trainer = rljax.make_trainer(
        agent, env, params, rljax.TrainConfig(total_env_steps=1, log_env_steps=1, eval_episodes=8)
    )
    state = trainer.init(jax.random.key(args.seed), tabular.TabularHParams(gamma=values["gamma"]))
    returns = np.asarray(trainer.evaluate(state.agent, jax.random.key(args.seed + 1)))
    settings = {"algo": args.algo, "env": args.env, "preset": None, "hparams": values}
    (out / "config.json").write_text(
        json.dumps({**settings, "versions": runner.versions()}, indent=2)
    )
    (out / "values.json").write_text(
        json.dumps(
            {"V": np.asarray(result.V).tolist(), "policy": np.asarray(result.policy).tolist()}
        )
    )
    summary = {
        "algo": args.algo,
        "env": args.env,
        "num_seeds": 1,
        "env_steps_per_seed": 0,
        "compile_seconds": 0.0,
        "train_seconds": round(seconds, 4),
        "env_steps_per_second": 0.0,
        "eval_return": {
            "mean": float(returns.mean()),
            "min": float(returns.min()),
            "max": float(returns.max()),
            "per_seed": [float(returns.mean())],
        },
        "versions": runner.versions(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"{int(result.sweeps)} sweeps; greedy return {returns.mean():.2f}; results in {out}/")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    config_path = folder / "config.json"
    if not config_path.exists():
        raise ValueError(f"{folder} is not a run folder (no config.json)")
    saved = json.loads(config_path.read_text())
    overrides = _settings_as_overrides(saved)
    overrides["eval_episodes"] = str(args.episodes)
    exp = experiment.make_experiment(saved["algo"], saved["env"], saved["preset"], overrides)
    files = runner.checkpoint_files(folder)
    if not files:
        raise ValueError(f"{folder}/checkpoints holds no checkpoint to evaluate")
    seeds = saved["num_seeds"]
    keys = jax.random.split(jax.random.key(saved["seed"]), seeds)
    init, _, evaluate = runner.compiled(exp.trainer)
    template = init(keys, rljax.tile_hparams(exp.hparams, seeds))
    state, chunk, _ = runner.load_run_state(files[-1], template)
    returns = np.asarray(evaluate(state.agent, runner.eval_keys(keys)))
    print(f"{files[-1].name} (after chunk {chunk}): {args.episodes} greedy episodes per seed")
    for i, r in enumerate(returns):
        print(f"  seed {i}: {r.mean():8.2f} ± {r.std():.2f}")
    print(f"  mean over seeds: {returns.mean():.2f}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    del args
    print("algorithms:")
    for a in experiment.ALGOS.values():
        presets = ", ".join(a.presets)
        print(f"  {a.name:<16} {a.summary} (default env {a.default_env}; presets: {presets})")
    for name in DP_ALGOS:
        print(
            f"  {name:<16} dynamic programming on an exact model (GridWorld); settings gamma, tol"
        )
    print("\nenvironments:\n  " + ", ".join(rljax.registered_envs()))
    for name in experiment.ALGOS:
        print(f"\n{name} settings (--set name=value; default preset):")
        for field, (default, meaning, where) in experiment.settable(name).items():
            print(f"  {field:<26} {default!s:<12} [{where}] {meaning}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    folders = [Path(d) for d in args.dirs]
    for folder in folders:
        if not (folder / "metrics.csv").exists():
            raise ValueError(f"{folder} has no metrics.csv (is it a run folder?)")
    out = Path(args.out)
    runner.plot_folders(folders, out)
    print(f"wrote {out}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rljax", description="Train, evaluate and compare runs.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train ALGO on ENV into a run folder")
    t.add_argument("algo", help="algorithm name (see `rljax list`)")
    t.add_argument("env", help="environment id (see `rljax list`)")
    t.add_argument("--seeds", type=int, default=4)
    t.add_argument("--seed", type=int, default=0, help="base PRNG seed")
    t.add_argument("--steps", type=int, default=None, help="env steps per seed")
    t.add_argument("--preset", default="default")
    t.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    t.add_argument("--out", default=None, help="run folder (default runs/ALGO_ENV)")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--checkpoint-every", type=int, default=10, help="chunks between checkpoints")
    t.add_argument("--keep", type=int, default=3, help="checkpoints kept")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("eval", help="evaluate the greedy policy of a run folder")
    e.add_argument("dir")
    e.add_argument("--episodes", type=int, default=32)
    e.set_defaults(func=cmd_eval)
    lst = sub.add_parser("list", help="algorithms, environments, settings")
    lst.set_defaults(func=cmd_list)
    pl = sub.add_parser("plot", help="learning curves of run folders on one figure")
    pl.add_argument("dirs", nargs="+")
    pl.add_argument("--out", default="curves.png")
    pl.set_defaults(func=cmd_plot)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, rljax.checkpoint.CheckpointError) as e:
        print(f"rljax: error: {e}", file=sys.stderr)
        return 2
