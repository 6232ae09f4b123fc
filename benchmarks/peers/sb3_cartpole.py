"""Peer baseline: Stable-Baselines3's DQN or A2C on gymnasium CartPole-v1, rl-zoo settings.

Runs inside benchmarks/peers/.venv-sb3 (see setup.sh), not the project venv.

Trains `--train-seeds` seeds one after another (SB3 trains one run per process loop), each
with the CartPole-v1 entry of rl-baselines3-zoo's `hyperparams/dqn.yml` or `a2c.yml`
(restated below), evaluates each final policy greedily (deterministic=True) over
`--eval-episodes` episodes, and extrapolates the wall time of `--seeds` seeds from the mean
per seed. Prints one JSON object on stdout:
    {"library": "stable-baselines3", "version": ..., "algo": "dqn", "seeds_trained": K,
     "train_seconds_per_seed": [...], "eval_return_per_seed": [...], "solved": ...,
     "seconds_per_solved_seed": ..., "extrapolated_seconds_for_seeds": ..., ...}
"""

from __future__ import annotations

import argparse
import json
import time
from importlib.metadata import version

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import A2C, DQN
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

# rl-baselines3-zoo, hyperparams/dqn.yml and hyperparams/a2c.yml, entry CartPole-v1.
RL_ZOO = {
    "dqn": {
        "n_timesteps": 50_000,
        "n_envs": 1,
        "kwargs": {
            "learning_rate": 2.3e-3,
            "batch_size": 64,
            "buffer_size": 100_000,
            "learning_starts": 1_000,
            "gamma": 0.99,
            "target_update_interval": 10,
            "train_freq": 256,
            "gradient_steps": 128,
            "exploration_fraction": 0.16,
            "exploration_final_eps": 0.04,
            "policy_kwargs": {"net_arch": [256, 256]},
        },
    },
    "a2c": {"n_timesteps": 500_000, "n_envs": 8, "kwargs": {"ent_coef": 0.0}},
}
SOLVED = 475.0


def train_one(algo: str, seed: int, steps: int, eval_episodes: int) -> tuple[float, float]:
    """Train one seed; return (wall seconds of `learn`, greedy mean return)."""
    zoo = RL_ZOO[algo]
    env = make_vec_env("CartPole-v1", n_envs=zoo["n_envs"], seed=seed)
    cls = DQN if algo == "dqn" else A2C
    model = cls("MlpPolicy", env, seed=seed, verbose=0, device="cpu", **zoo["kwargs"])
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    seconds = time.perf_counter() - t0
    eval_env = Monitor(gym.make("CartPole-v1"))
    eval_env.reset(seed=10_000 + seed)
    mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes, deterministic=True)
    return seconds, float(mean)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=sorted(RL_ZOO), default="dqn")
    parser.add_argument("--seeds", type=int, default=8, help="seeds whose time is reported")
    parser.add_argument("--train-seeds", type=int, default=2, help="seeds actually trained")
    parser.add_argument("--steps", type=int, default=None, help="override rl-zoo n_timesteps")
    parser.add_argument("--eval-episodes", type=int, default=32)
    args = parser.parse_args()
    steps = args.steps or RL_ZOO[args.algo]["n_timesteps"]
    seconds, returns = [], []
    for seed in range(args.train_seeds):
        s, r = train_one(args.algo, seed, steps, args.eval_episodes)
        seconds.append(round(s, 2))
        returns.append(round(r, 1))
    solved = int(sum(r >= SOLVED for r in returns))
    mean = float(np.mean(seconds))
    result = {
        "library": "stable-baselines3",
        "version": version("stable-baselines3"),
        "versions": {p: version(p) for p in ("stable-baselines3", "torch", "gymnasium")},
        "torch_threads": torch.get_num_threads(),
        "algo": args.algo,
        "hyperparameters": "rl-baselines3-zoo CartPole-v1",
        "env_steps_per_seed": steps,
        "n_envs": RL_ZOO[args.algo]["n_envs"],
        "seeds_trained": args.train_seeds,
        "train_seconds_per_seed": seconds,
        "eval_episodes": args.eval_episodes,
        "eval_return_per_seed": returns,
        "solved": solved,
        "seconds_per_solved_seed": round(sum(seconds) / solved, 2) if solved else None,
        "seeds": args.seeds,
        "extrapolated_seconds_for_seeds": round(mean * args.seeds, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
