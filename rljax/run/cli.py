"""The command line: `python -m rljax` (or `rljax`) train / eval / render / list / plot.

rljax train dqn CartPole-v1 --seeds 8 --out runs/dqn
rljax train sarsa GridWorld-v0 --set learning_rate=0.1 --set epsilon=0.2
rljax train dqn CartPole-v1 --out runs/dqn --resume       # continue from the newest checkpoint
rljax train dqn CartPole-v1 --out runs/dqn --resume --steps 200000   # extend a finished run
rljax eval runs/dqn --episodes 64 [--seed 3] [--checkpoint 40]
rljax render runs/dqn --seed 0 --out episode.gif
rljax list [dqn] [--envs]
rljax plot runs/dqn runs/dqn_course --out compare.png
rljax sweep dqn CartPole-v1 --grid learning_rate=1e-3,3e-4 --grid gamma=0.99,0.95 --seeds 4 \
    --out sweeps/dqn [--devices all]
rljax train value_iteration GridWorld-v0 --set gamma=0.9   # dynamic programming

Errors are one line (`rljax: error: ...`, exit 2); Ctrl-C stops at the next chunk boundary
after saving a checkpoint and prints the command that resumes (exit 130).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import jax
import numpy as np

from rljax.core.evaluation import default_max_steps, greedy_episode
from rljax.envs import registered_envs
from rljax.run import checkpoint, folders, loop, registry, render
from rljax.run.cache import enable_compile_cache
from rljax.run.sweep import sweep

PREDICTION = ("td", "mc")  # they evaluate a fixed policy: their result is a value table


def _overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects name=value, got {pair!r}")
        name, value = pair.split("=", 1)
        out[name.strip()] = value.strip()
    return out


def _positive(flag: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{flag} must be >= 1, got {value}")


def resume_command(argv: list[str], out: Path) -> str:
    """The command that resumes a run started with `argv` (the arguments after `rljax`)."""
    args = list(argv)
    if "--out" not in args and not any(a.startswith("--out=") for a in args):
        args += ["--out", str(out)]
    if "--resume" not in args:
        args.append("--resume")
    args = [a for a in args if a != "--force"]
    return shlex.join([Path(sys.executable).name, "-m", "rljax", *args])


def cmd_train(args: argparse.Namespace) -> int:
    for flag, value in (("--seeds", args.seeds), ("--steps", args.steps)):
        _positive(flag, value)
    _positive("--checkpoint-every", args.checkpoint_every)
    _positive("--keep", args.keep)
    overrides = _overrides(args.set)
    if args.steps is not None:
        if "total_env_steps" in overrides:
            raise ValueError("--steps and --set total_env_steps=... both set the budget; give one")
        overrides["total_env_steps"] = str(args.steps)
    exp = registry.make_experiment(args.algo, args.env, args.preset, overrides)
    out = Path(args.out or f"runs/{args.algo}_{exp.env_id}")
    steps = exp.train_config.total_env_steps
    print(f"{args.algo} on {exp.env_id}: {args.seeds} seeds, {steps:,} steps; compiling ...")
    sys.stdout.flush()
    try:
        result = folders.run_in_folder(
            exp,
            out,
            seeds=args.seeds,
            seed=args.seed,
            resume=args.resume,
            checkpoint_every=args.checkpoint_every,
            keep=args.keep,
            on_chunk=loop.print_progress(),
            force=args.force,
            tensorboard=args.tensorboard,
            devices=_devices(args.devices),
        )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted before the first checkpoint; nothing to keep. Run the same "
            f"command again to train ({(args.resume and 'it resumes') or 'it starts afresh'})."
        )
        return 130
    if result.get("interrupted"):
        print(f"\ninterrupted after chunk {result['chunk']}; resume with:")
        print(f"  {resume_command(args.argv, out)}")
        return 130
    if result.get("report"):
        print(result["report"])
    ev = result["eval_return"]
    if args.algo in PREDICTION:
        print(f"value table of the evaluated policy above and in {out}/values.png")
    else:
        print(
            f"greedy return per seed {np.round(ev['per_seed'], 1).tolist()} (mean {ev['mean']:.1f})"
        )
    print(
        f"compile {result['compile_seconds']:.1f} s, train {result['train_seconds']:.1f} s; "
        f"results in {out}/"
    )
    return 0


def _named_values(pairs: list[str], flag: str) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair or not pair.split("=", 1)[1].strip():
            raise ValueError(f"{flag} expects name=value(s), got {pair!r}")
        name, value = pair.split("=", 1)
        out[name.strip()] = value.strip()
    return out


def _devices(text: str) -> list | str | None:
    if text in ("auto", "all"):
        return text
    count = len(jax.devices())
    if not text.isdigit() or not 1 <= int(text) <= count:
        raise ValueError(f"--devices must be 'auto', 'all' or 1 to {count}, got {text!r}")
    return jax.devices()[: int(text)]


def _devices_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--devices", default="auto",
        help="split the runs across devices: 'auto' (every CPU core, one accelerator), "
        "'all', or a count",
    )  # fmt: skip


def cmd_sweep(args: argparse.Namespace) -> int:
    _positive("--seeds", args.seeds)
    _positive("--steps", args.steps)
    grid = {k: v.split(",") for k, v in _named_values(args.grid, "--grid").items()}
    random = {}
    for name, spec in _named_values(args.random, "--random").items():
        parts = spec.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"--random {name}={spec}: expected low:high[:log]")
        try:
            low, high = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"--random {name}={spec}: low and high must be numbers") from None
        random[name] = (low, high, parts[2] if len(parts) == 3 else "linear")
    if bool(grid) == bool(random):
        raise ValueError("sweep needs --grid name=v1,v2,... or --random name=low:high[:log]")
    overrides = _overrides(args.set)
    if args.steps is not None:
        overrides["total_env_steps"] = str(args.steps)
    report = loop.print_progress()

    def on_group(index: int, groups: int, runs: int) -> None:
        print(f"batch {index + 1}/{groups}: {runs} runs; compiling ...")
        sys.stdout.flush()

    result = sweep(
        args.algo, args.env, grid=grid or None, random=random or None, samples=args.samples,
        seeds=args.seeds, preset=args.preset, seed=args.seed, overrides=overrides,
        devices=_devices(args.devices), out=args.out, resume=args.resume, force=args.force,
        on_chunk=report, on_group=on_group, compile_cache=not args.no_compile_cache,
    )  # fmt: skip
    if result.summary.get("interrupted"):
        print(f"\ninterrupted; resume with:\n  {resume_command(args.argv, Path(args.out))}")
        return 130
    print(f"{result.summary['runs']} runs, {result.summary['settings']} settings, best first:")
    for r in result.summary["ranked"][:10]:
        setting = " ".join(f"{k}={v}" for k, v in r["setting"].items())
        print(
            f"  {setting:<40} final return {r['final_return_mean']:8.2f} "
            f"± {r['final_return_std']:.2f} (min {r['final_return_min']:.1f})"
        )
    print(f"results in {args.out}/ (sweep.csv, summary.json, curves.png, heatmap.png)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    _positive("--episodes", args.episodes)
    exp, state, chunk, path = folders.load_run(
        args.dir, args.checkpoint, eval_episodes=str(args.episodes)
    )
    saved = folders.read_settings(args.dir)
    seeds = saved["num_seeds"]
    if args.seed is not None and not 0 <= args.seed < seeds:
        raise ValueError(f"--seed {args.seed}: {args.dir} holds seeds 0 to {seeds - 1}")
    keys = jax.random.split(jax.random.key(saved["seed"]), seeds)
    evaluate = loop.jitted(exp.trainer)[2]
    returns = np.asarray(evaluate(state.agent, loop.eval_keys(keys)))
    print(f"{path.name} (after chunk {chunk}): {args.episodes} greedy episodes per seed")
    chosen = range(seeds) if args.seed is None else [args.seed]
    for i in chosen:
        print(f"  seed {i}: {returns[i].mean():8.2f} ± {returns[i].std():.2f}")
    if args.seed is None:
        print(f"  mean over seeds: {returns.mean():.2f}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    policy = folders.load_policy(args.dir, args.seed, args.checkpoint)
    env, env_params = policy.env, policy.env_params
    limit = args.max_steps or min(default_max_steps(env_params), 1_000)
    states, rewards, length = jax.jit(
        lambda s, k: greedy_episode(policy.agent, env, env_params, s, k, limit)
    )(policy.state, jax.random.key(args.seed))
    out = Path(args.out)
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: folder {out.parent} does not exist")
    title = f"{policy.settings['algo']}, seed {args.seed}"
    written = render.render_episode(env, env_params, states, int(length), out, title)
    print(f"{int(length)} steps, return {float(np.sum(rewards)):.2f}: {written}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    if args.envs:
        print("\n".join(registered_envs()))
        return 0
    names = [args.algo] if args.algo else list(registry.ALGOS)
    for name in names:
        registry.algo(name)  # an unknown name is an error listing the known ones
    print("algorithms:")
    for name in names:
        a = registry.ALGOS[name]
        presets = ", ".join(a.presets)
        print(f"  {a.name:<16} {a.summary} (default env {a.default_env}; presets: {presets})")
    if not args.algo:
        print("\nenvironments:\n  " + ", ".join(registered_envs()))
    for name in names:
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
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: folder {out.parent} does not exist")
    folders.plot_folders(dirs, out)
    print(f"wrote {out}")
    return 0


def _cache_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-compile-cache", action="store_true", default=argparse.SUPPRESS,
        help="do not use JAX's persistent compilation cache (~/.cache/rljax/jax)",
    )  # fmt: skip


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rljax", description="Train, evaluate and compare runs.")
    p.add_argument(
        "--no-compile-cache", action="store_true",
        help="do not use JAX's persistent compilation cache (~/.cache/rljax/jax)",
    )  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train ALGO on ENV into a run folder")
    t.add_argument("algo", help="algorithm name (see `rljax list`)")
    t.add_argument("env", help="environment id (see `rljax list --envs`)")
    t.add_argument("--seeds", type=int, default=4, help="runs trained at once (vmapped)")
    t.add_argument("--seed", type=int, default=0, help="base PRNG seed of the runs' keys")
    t.add_argument("--steps", type=int, default=None, help="env steps per run (the budget)")
    t.add_argument("--preset", default="default", help="named settings (see `rljax list ALGO`)")
    t.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="override one setting (repeatable; see `rljax list ALGO`)",
    )  # fmt: skip
    t.add_argument("--out", default=None, help="run folder (default runs/ALGO_ENV)")
    t.add_argument(
        "--resume", action="store_true",
        help="continue the run in --out from its newest checkpoint (a larger --steps extends it)",
    )  # fmt: skip
    t.add_argument(
        "--force", action="store_true",
        help="move an earlier run in --out aside (OUT.old-TIMESTAMP) and start afresh",
    )  # fmt: skip
    t.add_argument("--checkpoint-every", type=int, default=10, help="chunks between checkpoints")
    t.add_argument("--keep", type=int, default=3, help="checkpoints kept (the newest)")
    t.add_argument(
        "--tensorboard", action="store_true",
        help="also write TensorBoard event files to OUT/tensorboard (needs rljax[tensorboard])",
    )  # fmt: skip
    _devices_flag(t)
    _cache_flag(t)
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("eval", help="evaluate the greedy policy of a run folder")
    e.add_argument("dir", help="run folder")
    e.add_argument("--episodes", type=int, default=32, help="greedy episodes per seed")
    e.add_argument("--seed", type=int, default=None, help="only this run (default: all)")
    e.add_argument("--checkpoint", type=int, default=None, help="chunk of a kept checkpoint")
    e.set_defaults(func=cmd_eval)
    r = sub.add_parser("render", help="draw one greedy episode of a run folder as a GIF")
    r.add_argument("dir", help="run folder")
    r.add_argument("--seed", type=int, default=0, help="which run of the folder")
    r.add_argument("--checkpoint", type=int, default=None, help="chunk of a kept checkpoint")
    r.add_argument("--max-steps", type=int, default=None, help="episode length bound")
    r.add_argument("--out", default="episode.gif", help="GIF to write")
    r.set_defaults(func=cmd_render)
    sw = sub.add_parser("sweep", help="train a grid or random sample of settings x seeds")
    sw.add_argument("algo", help="algorithm name (see `rljax list`)")
    sw.add_argument("env", help="environment id (see `rljax list --envs`)")
    sw.add_argument(
        "--grid", action="append", default=[], metavar="NAME=V1,V2,...",
        help="values of one setting; every combination is trained (repeatable)",
    )  # fmt: skip
    sw.add_argument(
        "--random", action="append", default=[], metavar="NAME=LOW:HIGH[:log]",
        help="draw a setting uniformly (or log-uniformly) between LOW and HIGH (repeatable)",
    )  # fmt: skip
    sw.add_argument("--samples", type=int, default=None, help="random settings drawn")
    sw.add_argument("--seeds", type=int, default=4, help="seeds per setting")
    sw.add_argument("--seed", type=int, default=0, help="base PRNG seed (settings share keys)")
    sw.add_argument("--steps", type=int, default=None, help="env steps per run (the budget)")
    sw.add_argument("--preset", default="default", help="named settings swept around")
    sw.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="a setting fixed for every run (repeatable)",
    )  # fmt: skip
    sw.add_argument("--out", required=True, help="sweep folder")
    _devices_flag(sw)
    sw.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
    sw.add_argument("--force", action="store_true", help="move an earlier sweep in --out aside")
    _cache_flag(sw)
    sw.set_defaults(func=cmd_sweep)
    lst = sub.add_parser("list", help="algorithms, environments, settings")
    lst.add_argument("algo", nargs="?", default=None, help="only this algorithm")
    lst.add_argument("--envs", action="store_true", help="only the environment ids")
    lst.set_defaults(func=cmd_list)
    pl = sub.add_parser("plot", help="learning curves of run folders on one figure")
    pl.add_argument("dirs", nargs="+", help="run folders")
    pl.add_argument("--out", default="curves.png", help="PNG to write")
    pl.set_defaults(func=cmd_plot)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    args.argv = argv
    try:
        if not args.no_compile_cache:
            enable_compile_cache()
        return args.func(args)
    except (ValueError, checkpoint.CheckpointError) as e:
        print(f"rljax: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        where = f" {e.filename}" if e.filename else ""
        print(f"rljax: error:{where}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nrljax: interrupted", file=sys.stderr)
        return 130
