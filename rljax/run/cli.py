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
from pathlib import Path
from typing import Any

import jax
import numpy as np

from rljax.core.driver import tile_hparams
from rljax.envs import registered_envs
from rljax.run import checkpoint, folders, loop, registry


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
    exp = registry.make_experiment(args.algo, args.env, args.preset, overrides)
    out = Path(args.out or f"runs/{args.algo}_{args.env}")
    steps = exp.train_config.total_env_steps
    print(f"{args.algo} on {exp.env_id}: {args.seeds} seeds, {steps:,} steps; compiling ...")
    result = folders.run_in_folder(
        exp,
        out,
        seeds=args.seeds,
        seed=args.seed,
        resume=args.resume,
        checkpoint_every=args.checkpoint_every,
        keep=args.keep,
        on_chunk=loop.print_progress(),
    )
    if result.get("interrupted"):
        print(f"\ninterrupted after chunk {result['chunk']}; resume with --resume --out {out}")
        return 130
    if result.get("report"):
        print(result["report"])
    ev = result["eval_return"]
    print(
        f"greedy return per seed {np.round(ev['per_seed'], 1).tolist()} (mean {ev['mean']:.1f}); "
        f"compile {result['compile_seconds']:.1f} s, train {result['train_seconds']:.1f} s; "
        f"results in {out}/"
    )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    config_path = folder / "config.json"
    if not config_path.exists():
        raise ValueError(f"{folder} is not a run folder (no config.json)")
    saved = json.loads(config_path.read_text())
    overrides = _settings_as_overrides(saved)
    overrides["eval_episodes"] = str(args.episodes)
    exp = registry.make_experiment(saved["algo"], saved["env"], saved["preset"], overrides)
    files = folders.checkpoint_files(folder)
    if not files:
        raise ValueError(f"{folder}/checkpoints holds no checkpoint to evaluate")
    seeds = saved["num_seeds"]
    keys = jax.random.split(jax.random.key(saved["seed"]), seeds)
    init, _, evaluate = loop.jitted(exp.trainer)
    ekeys = loop.eval_keys(keys)
    template = init(keys, tile_hparams(exp.hparams, seeds))
    state, chunk, _ = folders.load_run_state(files[-1], template)
    returns = np.asarray(evaluate(state.agent, ekeys))
    print(f"{files[-1].name} (after chunk {chunk}): {args.episodes} greedy episodes per seed")
    for i, r in enumerate(returns):
        print(f"  seed {i}: {r.mean():8.2f} ± {r.std():.2f}")
    print(f"  mean over seeds: {returns.mean():.2f}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    del args
    print("algorithms:")
    for a in registry.ALGOS.values():
        presets = ", ".join(a.presets)
        print(f"  {a.name:<16} {a.summary} (default env {a.default_env}; presets: {presets})")
    print("\nenvironments:\n  " + ", ".join(registered_envs()))
    for name in registry.ALGOS:
        print(f"\n{name} settings (--set name=value; default preset):")
        for field, (default, meaning, where) in registry.settable(name).items():
            print(f"  {field:<26} {default!s:<12} [{where}] {meaning}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    dirs = [Path(d) for d in args.dirs]
    for folder in dirs:
        if not (folder / "metrics.csv").exists():
            raise ValueError(f"{folder} has no metrics.csv (is it a run folder?)")
    out = Path(args.out)
    folders.plot_folders(dirs, out)
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
    except (ValueError, checkpoint.CheckpointError) as e:
        print(f"rljax: error: {e}", file=sys.stderr)
        return 2
