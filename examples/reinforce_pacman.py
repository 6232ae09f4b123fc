"""REINFORCE on the course's Pacman: the course's preset beside the tuned one, several seeds
at once (or, with --env CartPole-v1, the tuned CartPole preset).

    python examples/reinforce_pacman.py [--env ENV] [--seeds 8] [--steps N] [--out DIR]

On the Pacman worlds (`PacmanReinforce-v0`, the course's REINFORCE world with -0.1 per
step, or `Pacman-v0`) it trains two presets on the same seeds and draws both learning
curves in `curve.png`:

* `course`: the course's script (`1-grid-world/7-reinforce`): one environment, one Adam
  step per episode on `-sum log pi * G`, the returns normalised over the episode, no
  baseline, no entropy bonus;
* `pacman`: the tuned preset: 16 environments, a learned baseline, an entropy bonus, and
  a seed stops once its greedy episode reaches the strawberry untouched.

`episode.gif` shows the greedy policy of the course preset's best seed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np
from _train_and_show import parse, train_and_show

import rljax
from rljax import reinforce
from rljax.core.driver import host_metrics
from rljax.run.loop import print_progress, run_batch

# Greedy episodes that reach the strawberry untouched: above 0.5 on Pacman-v0, above 0 on
# PacmanReinforce-v0 (1 - 0.1 per step; the shortest walk takes 8).
STOP_RETURN = {"Pacman-v0": 0.5, "PacmanReinforce-v0": 0.05}


def experiment(preset: str, env_id: str, steps: int | None):
    """`(agent, env, env_params, trainer, hparams)` of a REINFORCE preset on `env_id`: the
    tuned `pacman` preset stops on `STOP_RETURN[env_id]`; `steps` replaces the budget."""
    p = reinforce.preset(preset)
    train = p.train_config
    if preset == "pacman":
        train = dataclasses.replace(train, stop_return=STOP_RETURN[env_id])
    if steps is not None:
        chunk = min(train.chunk_env_steps, steps)
        train = dataclasses.replace(train, total_env_steps=steps, chunk_env_steps=chunk)
    env, params = rljax.make(env_id)
    agent = reinforce.make_reinforce(p.config, rljax.env_spec(env, params))
    return agent, env, params, rljax.make_trainer(agent, env, params, train), p.hparams


def plot_medians(curves: dict, path: Path, title: str) -> None:
    """Median and quartiles over seeds of each chunk's mean episode return (the mean hides
    the typical seed behind the few whose policy collapsed: their episodes last thousands
    of steps). A seed that met its stopping rule leaves the curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, (steps, returns) in curves.items():
        steps = np.where(steps < 0, np.nan, steps)
        returns = np.where(np.isnan(steps), np.nan, returns)
        keep = ~np.isnan(returns).all(axis=0)
        x = np.nanmax(steps[:, keep], axis=0)
        low, mid, high = np.nanpercentile(returns[:, keep], [25, 50, 75], axis=0)
        (line,) = ax.plot(x, mid, label=f"{label} (median, quartiles of {len(returns)} seeds)")
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
    ax.set(xlabel="environment steps per seed", ylabel="episode return", ylim=(-5, 0.5))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    args = parse(__doc__.splitlines()[0], "PacmanReinforce-v0", [*STOP_RETURN, "CartPole-v1"])
    if args.env == "CartPole-v1":
        train_and_show("reinforce", "cartpole", args)
        return
    out = Path(args.out or f"runs/reinforce_{args.env}")
    out.mkdir(parents=True, exist_ok=True)
    keys = jax.random.split(jax.random.key(0), args.seeds)
    curves, best = {}, None
    for preset in ("course", "pacman"):
        agent, env, params, trainer, hparams = experiment(preset, args.env, args.steps)
        print(f"{preset} preset on {args.env}: {args.seeds} seeds x "
              f"{trainer.config.total_env_steps:,} steps")  # fmt: skip
        hparams = rljax.tile_hparams(hparams, args.seeds)
        result = run_batch(trainer, keys, hparams, print_progress())
        greedy = result.eval_returns.mean(axis=1)
        for i, g in enumerate(greedy):
            print(f"  seed {i}: greedy return {g:6.2f}")
        print(f"  compile {result.compile_seconds:.1f} s, training {result.train_seconds:.1f} s")
        metrics = host_metrics(result.metrics)
        curves[f"{preset} preset"] = (metrics["env_steps"], metrics["episode_return_mean"])
        if best is None:
            seed = int(np.argmax(greedy))
            best = (
                agent,
                env,
                params,
                seed,
                jax.tree.map(lambda x, s=seed: x[s], result.state.agent),
            )
    plot_medians(curves, out / "curve.png", f"REINFORCE on {args.env}")
    agent, env, params, seed, agent_state = best
    states, rewards, length = jax.jit(
        lambda s, k: rljax.greedy_episode(agent, env, params, s, k, 100)
    )(agent_state, jax.random.key(1))
    n = int(length)
    print(f"greedy episode of the course preset's seed {seed}: {n} steps, "
          f"return {float(rewards.sum()):.2f}")  # fmt: skip
    episode = jax.tree.map(lambda x: x[: n + 1], states)
    print(f"animation: {env.render_episode(episode, out / 'episode.gif', f'seed {seed}')}")
    print(f"curve: {out / 'curve.png'}")


if __name__ == "__main__":
    main()
