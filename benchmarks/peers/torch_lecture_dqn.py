"""Peer baseline: a per-step PyTorch port of the classic course DQN for CartPole-v1.

The course script (Keras, the RLCode "2-cartpole/1-dqn" lineage) trains one agent in a
plain Python loop: one environment step, then one gradient step on a replay minibatch.
This port keeps that shape and its hyperparameters:

- gymnasium CartPole-v1; MLP 4-24-24-2, ReLU, He-uniform weights, zero biases
- MSE loss over all outputs (targets equal the prediction except at the taken action),
  Adam lr 1e-3 (Keras' epsilon 1e-7), discount 0.99
- epsilon 1.0, multiplied by 0.999 after each training step while above 0.01
- replay deque of 2000, batch 64, training once 1000 samples are stored, one gradient
  step after every environment step, target network copied at the end of each episode
- reward -100 when the pole falls before the 500-step limit (terminated, not truncated)
- target r + 0.99 * max_a Q_target(s', a) * (1 - terminated)

Runs inside benchmarks/peers/.venv-torch (see setup.sh), one thread. Stops when the mean
of the last 10 episode scores (steps per episode, the raw CartPole return) exceeds 490,
or after --max-steps environment steps. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import deque

import gymnasium as gym
import numpy as np
import torch
from torch import nn

DISCOUNT = 0.99
LEARNING_RATE = 1e-3
KERAS_ADAM_EPSILON = 1e-7
EPSILON_START = 1.0
EPSILON_DECAY = 0.999
EPSILON_MIN = 0.01
BATCH_SIZE = 64
MEMORY_SIZE = 2000
TRAIN_START = 1000
MAX_EPISODE_STEPS = 500
SOLVED_MEAN = 490.0
FAIL_REWARD = -100.0


def build_q_network(obs_dim: int, num_actions: int) -> nn.Sequential:
    net = nn.Sequential(
        nn.Linear(obs_dim, 24),
        nn.ReLU(),
        nn.Linear(24, 24),
        nn.ReLU(),
        nn.Linear(24, num_actions),
    )
    for layer in net:
        if isinstance(layer, nn.Linear):
            # Keras he_uniform: U(-sqrt(6 / fan_in), sqrt(6 / fan_in)).
            nn.init.kaiming_uniform_(layer.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    return net


class LectureDQNAgent:
    def __init__(self, obs_dim: int, num_actions: int):
        self.num_actions = num_actions
        self.epsilon = EPSILON_START
        self.memory: deque = deque(maxlen=MEMORY_SIZE)
        self.model = build_q_network(obs_dim, num_actions)
        self.target_model = build_q_network(obs_dim, num_actions)
        self.update_target_model()
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=LEARNING_RATE, eps=KERAS_ADAM_EPSILON
        )

    def update_target_model(self) -> None:
        self.target_model.load_state_dict(self.model.state_dict())

    def get_action(self, state: np.ndarray) -> int:
        if random.random() <= self.epsilon:
            return random.randrange(self.num_actions)
        with torch.no_grad():
            q_values = self.model(torch.from_numpy(state).unsqueeze(0))
        return int(q_values[0].argmax())

    def append_sample(self, state, action, reward, next_state, terminated) -> None:
        self.memory.append((state, action, reward, next_state, terminated))

    def train_model(self) -> None:
        batch = random.sample(self.memory, BATCH_SIZE)
        states = torch.from_numpy(np.stack([t[0] for t in batch]))
        actions = torch.tensor([t[1] for t in batch], dtype=torch.int64)
        rewards = torch.tensor([t[2] for t in batch], dtype=torch.float32)
        next_states = torch.from_numpy(np.stack([t[3] for t in batch]))
        terminated = torch.tensor([t[4] for t in batch], dtype=torch.float32)

        with torch.no_grad():
            next_max = self.target_model(next_states).max(dim=1).values
            bootstrap = rewards + DISCOUNT * next_max * (1.0 - terminated)

        q_values = self.model(states)
        # As model.fit on predict()-based targets: only the taken action has an error,
        # and the MSE averages over every output.
        targets = q_values.detach().clone()
        targets[torch.arange(BATCH_SIZE), actions] = bootstrap
        loss = nn.functional.mse_loss(q_values, targets)

        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

        if self.epsilon > EPSILON_MIN:
            self.epsilon *= EPSILON_DECAY


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=150_000, help="env step budget")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    env = gym.make("CartPole-v1")
    env.action_space.seed(args.seed)
    obs_dim = env.observation_space.shape[0]
    num_actions = env.action_space.n
    agent = LectureDQNAgent(obs_dim, num_actions)

    scores: list[int] = []
    env_steps = 0
    gradient_steps = 0
    solved = False
    reset_seed: int | None = args.seed

    start = time.perf_counter()
    while env_steps < args.max_steps and not solved:
        state, _ = env.reset(seed=reset_seed)
        reset_seed = None
        state = state.astype(np.float32)
        score = 0
        done = False
        while not done:
            action = agent.get_action(state)
            next_state, reward, terminated, truncated, _ = env.step(action)
            next_state = next_state.astype(np.float32)
            done = terminated or truncated
            if terminated and not truncated:
                reward = FAIL_REWARD
            agent.append_sample(state, action, float(reward), next_state, bool(terminated))
            if len(agent.memory) >= TRAIN_START:
                agent.train_model()
                gradient_steps += 1
            env_steps += 1
            score += 1
            state = next_state
            if env_steps >= args.max_steps:
                break
        if not done:
            break  # step budget ran out mid-episode: that episode is not scored
        agent.update_target_model()
        scores.append(score)
        solved = float(np.mean(scores[-10:])) > SOLVED_MEAN
    train_seconds = time.perf_counter() - start

    result = {
        "library": "torch",
        "version": torch.__version__,
        "gymnasium_version": gym.__version__,
        "seed": args.seed,
        "env_steps": env_steps,
        "gradient_steps": gradient_steps,
        "episodes": len(scores),
        "solved": solved,
        "train_seconds": round(train_seconds, 3),
        "final_mean_last10": round(float(np.mean(scores[-10:])), 2) if scores else None,
        "final_epsilon": round(agent.epsilon, 4),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
