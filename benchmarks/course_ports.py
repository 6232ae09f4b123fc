"""What the course's own scripts reach: plain-Python/NumPy ports of rlcode/reinforcement-
learning-kr's agents, run on their worlds restated in Python (no JAX, no rljax).

    python benchmarks/course_ports.py [--lessons sarsa,q_learning,...] [--seeds N]

The course's scripts need Tk windows, Keras and gym; these ports keep only their rules and
numbers (written here from reading the scripts, see docs/course.md): the grid worlds, the
Pacman world, CartPole-v1's physics, the tabular agents, Keras-style dense networks with
Glorot- or He-uniform init and Keras' Adam (epsilon 1e-7). They give the reference figures
in docs/course.md against which rljax's `course` presets are tested (tests/test_course.py).
Writes `benchmarks/results/course_ports.json`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# --- The grid world of the model-free lessons (3-monte-carlo, 4-sarsa, 5-q-learning) ------

GOAL, TRAPS = (2, 2), {(1, 2), (2, 1)}
GRID_MOVES = [(-1, 0), (1, 0), (0, -1), (0, 1)]  # up, down, left, right on (row, col)


def grid_step(s: tuple[int, int], a: int) -> tuple[tuple[int, int], float, bool]:
    """+100 on the goal, -100 on a trap (both end the episode), a wall bump stays put."""
    n = (min(max(s[0] + GRID_MOVES[a][0], 0), 4), min(max(s[1] + GRID_MOVES[a][1], 0), 4))
    if n == GOAL:
        return n, 100.0, True
    if n in TRAPS:
        return n, -100.0, True
    return n, 0.0, False


def argmax_random(values: list[float], rng: random.Random) -> int:
    """The course's `arg_max`: a random one among the best."""
    best = max(values)
    return rng.choice([i for i, v in enumerate(values) if v == best])


def greedy_reaches_goal(values_of, limit: int = 100) -> bool:
    """Follow the lowest-index greedy action from the start: does it reach the goal?"""
    s = (0, 0)
    for _ in range(limit):
        s, r, done = grid_step(s, int(np.argmax(values_of(s))))
        if done:
            return r > 0
    return False


def td_control(seed: int, q_learning: bool, budget: int, by_episodes: bool) -> dict:
    """The course's SARSA (alpha 0.01, epsilon 0.1) or Q-learning (alpha 0.01, epsilon
    0.9), gamma 0.9, for `budget` episodes (or steps)."""
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    eps = 0.9 if q_learning else 0.1
    Q: dict = {}
    q = lambda s: Q.setdefault(s, [0.0] * 4)  # noqa: E731

    def act(s):
        return int(nrng.integers(4)) if nrng.random() < eps else argmax_random(q(s), rng)

    steps = episodes = 0
    while (episodes if by_episodes else steps) < budget:
        s, a, done = (0, 0), act((0, 0)), False
        while not done and (by_episodes or steps < budget):
            if q_learning:
                a = act(s)
            n, r, done = grid_step(s, a)
            steps += 1
            if q_learning:
                q(s)[a] += 0.01 * (r + 0.9 * max(q(n)) - q(s)[a])
                s = n
            else:
                na = act(n)
                q(s)[a] += 0.01 * (r + 0.9 * q(n)[na] - q(s)[a])
                s, a = n, na
        episodes += done
    return {"steps": steps, "episodes": episodes, "reaches_goal": greedy_reaches_goal(q)}


def mc_control(seed: int, budget: int, by_episodes: bool) -> dict:
    """The course's Monte-Carlo agent: epsilon-greedy (0.1) over the values of the next
    cells, alpha 0.01, gamma 0.9; at the episode's end, walking back, each state is updated
    where first met, and only those steps add their reward and a discount."""
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    V: dict = {}
    nxt = lambda s: [V.get(grid_step(s, a)[0], 0.0) for a in range(4)]  # noqa: E731

    def act(s):
        return int(nrng.integers(4)) if nrng.random() < 0.1 else argmax_random(nxt(s), rng)

    steps = episodes = 0
    while (episodes if by_episodes else steps) < budget:
        s, samples, done = (0, 0), [], False
        a = act(s)
        while not done and (by_episodes or steps < budget):
            s, r, done = grid_step(s, a)
            steps += 1
            samples.append((s, r))
            a = act(s)
        if not done:
            break
        episodes += 1
        G, seen = 0.0, set()
        for state, r in reversed(samples):
            if state not in seen:
                seen.add(state)
                G = r + 0.9 * G
                V[state] = V.get(state, 0.0) + 0.01 * (G - V.get(state, 0.0))
    return {"steps": steps, "episodes": episodes, "reaches_goal": greedy_reaches_goal(nxt)}


# --- Networks: Keras-style dense layers and Adam ------------------------------------------


class Dense:
    """ReLU hidden layers, a linear output; Glorot- or He-uniform kernels, zero biases."""

    def __init__(self, sizes: list[int], rng: np.random.Generator, init: str) -> None:
        self.W, self.b = [], []
        for i, o in itertools.pairwise(sizes):
            lim = math.sqrt(6 / (i + o)) if init == "glorot" else math.sqrt(6 / i)
            self.W.append(rng.uniform(-lim, lim, (i, o)))
            self.b.append(np.zeros(o))

    def params(self) -> list[np.ndarray]:
        return self.W + self.b

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        hs = [x]
        for k, (W, b) in enumerate(zip(self.W, self.b, strict=True)):
            x = x @ W + b
            if k < len(self.W) - 1:
                x = np.maximum(x, 0)
            hs.append(x)
        return x, hs

    def backward(self, hs: list[np.ndarray], g: np.ndarray) -> list[np.ndarray]:
        """Gradients of the parameters, given `g` = d loss / d output."""
        gW, gb = [None] * len(self.W), [None] * len(self.b)
        for k in reversed(range(len(self.W))):
            gW[k], gb[k] = hs[k].T @ g, g.sum(0)
            if k > 0:
                g = (g @ self.W[k].T) * (hs[k] > 0)
        return gW + gb


class Adam:
    """Keras 2's Adam (epsilon 1e-7)."""

    def __init__(self, params: list[np.ndarray], lr: float) -> None:
        self.lr, self.t = lr, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.t += 1
        lr_t = self.lr * math.sqrt(1 - 0.999**self.t) / (1 - 0.9**self.t)
        for p, g, m, v in zip(params, grads, self.m, self.v, strict=True):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= lr_t * m / (np.sqrt(v) + 1e-7)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# --- Pacman (6-deep-sarsa, 7-reinforce) ------------------------------------------------------


class PacmanWorld:
    """The course's Pacman world: its step counter never resets; on odd counts the ghosts
    move (bouncing at the walls) before Pacman; each ghost on Pacman's cell pays -1, the
    strawberry +1 and ends the episode; `step_reward` on every step (REINFORCE: -0.1)."""

    def __init__(self, step_reward: float) -> None:
        self.counter, self.step_reward = 0, step_reward
        self.reset()

    def reset(self) -> np.ndarray:
        self.agent = [0, 0]
        self.ghosts = [[x, x + 1, -1] for x in range(3)]  # x, y, direction (-1: right)
        return self.state()

    def state(self) -> np.ndarray:
        out: list[float] = []
        for x, y, d in self.ghosts:
            out += [x - self.agent[0], y - self.agent[1], -1, d]
        return np.array([*out, 4 - self.agent[0], 4 - self.agent[1], 1], float)

    def step(self, a: int) -> tuple[np.ndarray, float, bool]:
        self.counter += 1
        if self.counter % 2 == 1:
            for g in self.ghosts:
                g[2] = 1 if g[0] == 4 else -1 if g[0] == 0 else g[2]
                g[0] += 1 if g[2] == -1 else -1
        x, y = self.agent
        x += (a == 2 and x < 4) - (a == 3 and x > 0)
        y += (a == 1 and y < 4) - (a == 0 and y > 0)
        self.agent = [x, y]
        reward = -1.0 * sum(g[0] == x and g[1] == y for g in self.ghosts)
        done = self.agent == [4, 4]
        return self.state(), reward + float(done) + self.step_reward, done


def pacman_greedy_return(net: Dense, step_reward: float, limit: int = 100) -> float:
    world, total = PacmanWorld(step_reward), 0.0
    s = world.reset()
    for _ in range(limit):
        s, r, done = world.step(int(np.argmax(net.forward(s[None])[0][0])))
        total += r
        if done:
            break
    return total


def deep_sarsa(seed: int, episodes: int = 1_000) -> dict:
    """`6-deep-sarsa/deep_sarsa_agent.py`: 30-30 ReLU (Glorot), Adam 1e-3, gamma 0.99,
    epsilon 1.0 x 0.9999 per step down to 0.01, Keras' MSE over the 5 outputs; the target's
    next action drawn independently of the one then taken."""
    rng = np.random.default_rng(seed)
    net = Dense([15, 30, 30, 5], rng, "glorot")
    opt, world, eps, steps = Adam(net.params(), 1e-3), PacmanWorld(0.0), 1.0, 0

    def act(s):
        if rng.random() <= eps:
            return int(rng.integers(5))
        return int(np.argmax(net.forward(s[None])[0][0]))

    for _ in range(episodes):
        s, done = world.reset(), False
        while not done:
            a = act(s)
            s2, r, done = world.step(a)
            a2 = act(s2)  # for the target only
            steps += 1
            eps = eps * 0.9999 if eps > 0.01 else eps
            q, hs = net.forward(s[None])
            target = r if done else r + 0.99 * net.forward(s2[None])[0][0, a2]
            g = np.zeros_like(q)
            g[0, a] = 2.0 / 5.0 * (q[0, a] - target)
            opt.step(net.params(), net.backward(hs, g))
            s = s2
    return {"steps": steps, "greedy_return": pacman_greedy_return(net, 0.0)}


def reinforce(seed: int, episodes: int = 2_500, max_steps: int = 200_000) -> dict:
    """`7-reinforce/reinforce_agent.py`: 24-24 ReLU softmax (Glorot), Adam 1e-3, gamma
    0.99, one step per episode on -sum log pi * G, the returns normalised over the episode.
    A seed that has not finished its episodes within `max_steps` counts as stuck."""
    rng = np.random.default_rng(seed)
    net = Dense([15, 24, 24, 5], rng, "glorot")
    opt, world, steps = Adam(net.params(), 1e-3), PacmanWorld(-0.1), 0
    for e in range(episodes):
        s, done, S, A, R = world.reset(), False, [], [], []
        while not done and steps <= max_steps:
            p = softmax(net.forward(s[None])[0][0])
            a = int(rng.choice(5, p=p / p.sum()))
            s2, r, done = world.step(a)
            S.append(s), A.append(a), R.append(r)
            s, steps = s2, steps + 1
        if not done:
            return {"steps": steps, "episodes": e, "stuck": True, "greedy_return": None}
        G, run = np.zeros(len(R)), 0.0
        for t in reversed(range(len(R))):
            run = run * 0.99 + R[t]
            G[t] = run
        G = (G - G.mean()) / (G.std() if G.std() > 0 else 1.0)
        logits, hs = net.forward(np.array(S))
        opt.step(net.params(), net.backward(hs, (softmax(logits) - np.eye(5)[A]) * G[:, None]))
    return {"steps": steps, "episodes": episodes, "stuck": False,
            "greedy_return": pacman_greedy_return(net, -0.1)}  # fmt: skip


# --- CartPole (1-dqn, 2-actor-critic) -------------------------------------------------------


class CartPole:
    """gym's CartPole-v1: Euler steps of 0.02 s, ends when the pole passes 12 degrees or
    the cart 2.4, or after 500 steps."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def reset(self) -> np.ndarray:
        self.s, self.t = self.rng.uniform(-0.05, 0.05, 4), 0
        return self.s.copy()

    def step(self, a: int) -> tuple[np.ndarray, float, bool]:
        x, xd, th, thd = self.s
        ct, st = math.cos(th), math.sin(th)
        temp = ((10.0 if a == 1 else -10.0) + 0.05 * thd * thd * st) / 1.1
        thacc = (9.8 * st - ct * temp) / (0.5 * (4.0 / 3.0 - 0.1 * ct * ct / 1.1))
        xacc = temp - 0.05 * thacc * ct / 1.1
        self.s = np.array([x + 0.02 * xd, xd + 0.02 * xacc, th + 0.02 * thd, thd + 0.02 * thacc])
        self.t += 1
        fell = abs(self.s[0]) > 2.4 or abs(self.s[2]) > 12 * 2 * math.pi / 360
        return self.s.copy(), 1.0, fell or self.t >= 500


def a2c(seed: int, episodes: int = 1_000) -> dict:
    """`2-cartpole/2-actor-critic/cartpole_a2c.py`: actor 24 ReLU -> softmax, critic 24-24
    ReLU -> linear (He), Adam 1e-3 / 5e-3, one-step TD at every step, -100 when the pole
    falls; stop once the last 10 scores average above 490."""
    rng = np.random.default_rng(seed)
    actor, critic = Dense([4, 24, 2], rng, "he"), Dense([4, 24, 24, 1], rng, "he")
    opt_a, opt_c = Adam(actor.params(), 1e-3), Adam(critic.params(), 5e-3)
    env, scores, steps = CartPole(rng), [], 0
    for e in range(episodes):
        s, score, done = env.reset(), 0.0, False
        while not done:
            logits, ha = actor.forward(s[None])
            p = softmax(logits)[0]
            a = int(rng.choice(2, p=p / p.sum()))
            s2, r, done = env.step(a)
            steps += 1
            r = r if not done or score == 499 else -100.0
            v, hc = critic.forward(s[None])
            target = r if done else r + 0.99 * critic.forward(s2[None])[0][0, 0]
            advantage = target - v[0, 0]
            opt_a.step(actor.params(), actor.backward(ha, (p - np.eye(2)[a])[None] * advantage))
            opt_c.step(critic.params(), critic.backward(hc, 2.0 * (v - target)))
            score, s = score + r, s2
        scores.append(score if score == 500.0 else score + 100)
        if np.mean(scores[-10:]) > 490:
            return {"stopped": True, "episodes": e + 1, "steps": steps}
    return {"stopped": False, "episodes": episodes, "steps": steps}


def dqn(seed: int, max_steps: int = 150_000) -> dict:
    """`2-cartpole/1-dqn/cartpole_dqn.py`: 24-24 ReLU (He), MSE, Adam 1e-3, gamma 0.99,
    epsilon 1.0 x 0.999 per training step down to 0.01, memory 2,000, batch 64 from 1,000
    samples, the target network copied at every episode's end, -100 when the pole falls;
    stop once the last 10 scores average above 490. Also the mean score of the episodes
    that end between steps 5,000 and 7,500."""
    rng = np.random.default_rng(seed)
    net, target = Dense([4, 24, 24, 2], rng, "he"), Dense([4, 24, 24, 2], rng, "he")
    target.W, target.b = [w.copy() for w in net.W], [b.copy() for b in net.b]
    opt, env = Adam(net.params(), 1e-3), CartPole(rng)
    memory = [np.zeros((2000, 4)), np.zeros(2000, int), np.zeros(2000), np.zeros((2000, 4)),
              np.zeros(2000)]  # fmt: skip
    n, eps, steps, scores, ends = 0, 1.0, 0, [], []
    while steps < max_steps and not (len(scores) and np.mean(scores[-10:]) > 490):
        s, score, done = env.reset(), 0.0, False
        while not done:
            if rng.random() <= eps:
                a = int(rng.integers(2))
            else:
                a = int(np.argmax(net.forward(s[None])[0][0]))
            s2, r, done = env.step(a)
            steps += 1
            r = r if not done or score == 499 else -100.0
            for buf, x in zip(memory, (s, a, r, s2, done), strict=True):
                buf[n % 2000] = x
            n += 1
            if n >= 1000:
                eps = eps * 0.999 if eps > 0.01 else eps
                idx = rng.choice(min(n, 2000), 64, replace=False)
                bs, ba, br, bs2, bd = (buf[idx] for buf in memory)
                q, hs = net.forward(bs)
                y = br + (1 - bd) * 0.99 * target.forward(bs2)[0].max(1)
                g = np.zeros_like(q)
                g[np.arange(64), ba] = (q[np.arange(64), ba] - y) / 64.0  # MSE over 64 x 2
                opt.step(net.params(), net.backward(hs, g))
            score, s = score + r, s2
        target.W, target.b = [w.copy() for w in net.W], [b.copy() for b in net.b]
        scores.append(score if score == 500.0 else score + 100)
        ends.append(steps)
    early = [sc for sc, e in zip(scores, ends, strict=True) if 5_000 < e <= 7_500]
    return {"stopped": bool(np.mean(scores[-10:]) > 490), "steps": steps,
            "score_5k_7k5": float(np.mean(early)) if early else None}  # fmt: skip


LESSONS = {
    "sarsa": lambda seed: {
        "1000_episodes": td_control(seed, False, 1_000, True),
        "100k_steps": td_control(seed, False, 100_000, False),
    },
    "q_learning": lambda seed: {"1000_episodes": td_control(seed, True, 1_000, True)},
    "mc_control": lambda seed: {
        "1000_episodes": mc_control(seed, 1_000, True),
        "7k_steps": mc_control(seed, 7_000, False),
    },
    "deep_sarsa": deep_sarsa,
    "reinforce": reinforce,
    "a2c": a2c,
    "dqn": dqn,
}
SEEDS = {"sarsa": 40, "q_learning": 40, "mc_control": 40, "deep_sarsa": 16, "reinforce": 16,
         "a2c": 12, "dqn": 8}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lessons", default=",".join(LESSONS))
    parser.add_argument(
        "--seeds", type=int, default=None, help="seeds per lesson (default: varies)"
    )
    args = parser.parse_args()
    out = HERE / "results" / "course_ports.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    for lesson in args.lessons.split(","):
        t0, runs = time.perf_counter(), []
        for seed in range(args.seeds or SEEDS[lesson]):
            runs.append(LESSONS[lesson](seed))
            print(lesson, seed, runs[-1], flush=True)
        results[lesson] = {"seconds": round(time.perf_counter() - t0, 1), "runs": runs}
    results["command"] = "python benchmarks/course_ports.py"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
