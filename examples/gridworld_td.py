"""Monte-Carlo, TD(0), SARSA and Q-learning on the 5x5 GridWorld, many seeds at once.

    python examples/gridworld_td.py [--seeds 256] [--steps 20000] [--out runs/gridworld_td]

Prediction (the uniform random policy, traps not terminal): error of the estimated values
against dynamic programming's exact ones, mean over seeds, as training goes on.
Tuned control (`GridWorld-v0`, traps terminal, the `default` presets): greedy value of the
start state against the DP optimum.
The course's control lessons (`GridWorld100-v0`: +100 at the goal, -100 at the traps, both
terminal; the `course` presets: Monte-Carlo control over the next cells' values, SARSA and
Q-learning with the course's alpha 0.01, gamma 0.9 and epsilon 0.1 / 0.1 / 0.9): the share
of seeds whose greedy walk reaches the goal.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import rljax
from rljax import dp, tabular
from rljax.envs.gridworld import GOAL, START, TRAPS, GridWorldParams, transition_model
from rljax.run import registry
from rljax.run.loop import chunk_loop, jitted


def curve(agent, env, params, hparams, seeds, steps, measure):
    """Train `seeds` runs chunk by chunk; `measure(tables [seeds, ...])` after each chunk."""
    config = rljax.TrainConfig(total_env_steps=steps, chunk_env_steps=steps // 40, eval_episodes=1)
    trainer = rljax.make_trainer(agent, env, params, config)
    init = jitted(trainer)[0]
    state = init(jax.random.split(jax.random.key(0), seeds), rljax.tile_hparams(hparams, seeds))
    xs, ys = [0], [measure(np.asarray(state.agent.params))]
    for done in chunk_loop(trainer, state):
        xs.append(int(done.row["env_steps"][0]))
        ys.append(measure(np.asarray(done.state.agent.params)))
    return np.array(xs), np.array(ys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40_000)
    parser.add_argument("--gamma", type=float, default=0.9)
    parser.add_argument("--out", default="runs/gridworld_td")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env, _ = rljax.make("GridWorld-v0")

    # Prediction: the uniform random policy; traps only pay -1.
    pred = GridWorldParams(traps_terminal=False, max_steps_in_episode=200)
    P, R, terminal = transition_model(env, pred)
    v_exact = np.asarray(
        dp.policy_evaluation(P, R, terminal, jnp.full((25, 4), 0.25), args.gamma)[0]
    )
    cfg = tabular.TabularConfig.for_env(env, pred)
    rms = lambda v: float(np.sqrt(np.mean((v - v_exact) ** 2, axis=-1)).mean())  # noqa: E731
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 4))
    for label, agent, lr in [
        ("TD(0)", tabular.make_td_prediction(cfg), 0.05),
        ("MC first-visit", tabular.make_mc_prediction(cfg, first_visit=True), 0.02),
        ("MC every-visit", tabular.make_mc_prediction(cfg, first_visit=False), 0.02),
    ]:
        hp = tabular.TabularHParams(learning_rate=lr, gamma=args.gamma)
        x, y = curve(agent, env, pred, hp, args.seeds, args.steps, rms)
        ax1.plot(x, y, label=f"{label}, alpha={lr}")
        print(f"{label:>15}: RMS error vs DP {y[0]:.3f} -> {y[-1]:.3f}")
    ax1.set(xlabel="environment steps per seed", ylabel=f"RMS error (mean of {args.seeds} seeds)")
    ax1.set_title("prediction of the random policy")
    ax1.legend()

    # Control: traps end the episode.
    ctrl = env.default_params
    P, R, terminal = transition_model(env, ctrl)
    v_star = float(dp.value_iteration(P, R, terminal, args.gamma).V[START])
    cfg = tabular.TabularConfig.for_env(env, ctrl)
    # Optimistic initial values, exploration fading to zero (see tests/test_gridworld_learning).
    hp = tabular.TabularHParams(
        learning_rate=0.05, gamma=args.gamma, epsilon=0.3, epsilon_decay=0.9998, init_value=2.0
    )
    start_value = lambda q: float(q[:, START].max(-1).mean())  # noqa: E731
    for label, agent in [
        ("SARSA", tabular.make_sarsa(cfg)),
        ("Expected SARSA", tabular.make_sarsa(cfg, expected=True)),
        ("Q-learning", tabular.make_q_learning(cfg)),
    ]:
        x, y = curve(agent, env, ctrl, hp, args.seeds, args.steps, start_value)
        ax2.plot(x, y, label=label)
        print(f"{label:>15}: max_a Q(start, a) {y[-1]:.3f} (DP optimum {v_star:.3f})")
    ax2.axhline(v_star, color="grey", linestyle="--", label="DP optimum")
    ax2.set(xlabel="environment steps per seed", ylabel="max_a Q(start, a), mean over seeds")
    ax2.set_title("tuned control (GridWorld-v0)")
    ax2.legend()

    # The course's control lessons, with the course presets on their world.
    env100, params100 = rljax.make("GridWorld100-v0")
    successors = np.asarray(transition_model(env100, params100)[0]).argmax(-1)

    def reaches_goal(tables: np.ndarray) -> float:
        """Share of seeds whose greedy walk (lowest index among ties) reaches the goal."""
        reached = []
        for table in tables:
            q = table[successors] if table.ndim == 1 else table  # MC control learns V
            s = START
            for _ in range(25):
                s = int(successors[s, int(np.argmax(q[s]))])
                if s == GOAL or s in TRAPS:
                    break
            reached.append(s == GOAL)
        return float(np.mean(reached))

    for label, algo in [
        ("MC control (course)", "mc_control"),
        ("SARSA (course)", "sarsa"),
        ("Q-learning (course)", "q_learning"),
    ]:
        exp = registry.make_experiment(algo, "GridWorld100-v0", "course")
        x, y = curve(
            exp.agent, env100, params100, exp.hparams, args.seeds, args.steps, reaches_goal
        )
        ax3.plot(x, y, label=label)
        print(f"{label:>20}: greedy walk reaches the goal on {y[-1]:.0%} of seeds")
    ax3.set(xlabel="environment steps per seed", ylabel="share of seeds", ylim=(-0.02, 1.02))
    ax3.set_title("the course's control lessons (GridWorld100-v0)")
    ax3.legend()
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    print(f"curves: {out / 'curves.png'}")


if __name__ == "__main__":
    main()
