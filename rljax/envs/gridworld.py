"""The 5x5 GridWorld of the dynamic-programming lessons, with its exact one-step model.

Layout (row, col), states numbered row-major `s = row * 5 + col`::

    S . . . .        S: start (0, 0), state 0
    . . T . .        T: traps (1, 2) and (2, 1), reward `trap_reward` (-1)
    . T G . .        G: goal (2, 2), reward `goal_reward` (+1), always terminal
    . . . . .
    . . . . .

Actions: 0 up, 1 down, 2 left, 3 right, and with `stay_action=True` a fifth, 4 stay.
Moves are deterministic; a move into the outer wall leaves the agent where it is.
(`step` clips an out-of-range action into the valid ones.)

Rewards are received on *entering* a cell: a step that moves the agent into the goal or
a trap pays that cell's reward; a step that leaves the agent in place (a bump into a wall,
or the stay action) pays 0, even on a trap. Reaching the goal terminates the episode.
With `traps_terminal=True` (default) entering a trap terminates the episode too; with
`traps_terminal=False` a trap only pays its reward and the walk goes on. Episodes are
truncated after `max_steps_in_episode` steps.
A terminal cell is absorbing with reward 0 (should `step_env` be called from one), which
is exactly what `transition_model` reports, so dynamic programming needs no special case.

* `GridWorld-v0`: 4 actions, observation the state index (int32, shape `()`).
* `GridWorld5-v0`: the same with the stay action (5 actions).
* `GridWorld(one_hot=True)`: observation a one-hot float32 `[25]` (for networks).

The course's own settings (rlcode/reinforcement-learning-kr, `1-grid-world`), as two ids
whose default params are those of its lessons (`docs/course.md`):

* `GridWorldDP-v0` (`COURSE_DP_PARAMS`), the dynamic-programming lessons' world
  (`1-policy-iteration`, `2-value-iteration`): +1 at the goal, -1 at the traps, and only
  the goal is terminal.
* `GridWorld100-v0` (`COURSE_MODEL_FREE_PARAMS`), the model-free lessons' world
  (`3-monte-carlo`, `4-sarsa`, `5-q-learning`): +100 at the goal, -100 at the traps, both
  terminal. The course has no step limit; the limit here is 10,000 steps, which no
  episode of the course's agents comes near (it bounds a greedy walk that never ends).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from rljax.core.types import Array
from rljax.core.validation import check_bool, check_values, hyperparameters

SIZE = 5
NUM_STATES = SIZE * SIZE
START = 0
GOAL = 2 * SIZE + 2  # (2, 2)
TRAPS = (1 * SIZE + 2, 2 * SIZE + 1)  # (1, 2), (2, 1)
ACTION_NAMES = ("up", "down", "left", "right", "stay")
ARROWS = ("^", "v", "<", ">", "o")
# (d_row, d_col) per action, the stay action last.
_MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]], np.int32)


@struct.dataclass
class GridWorldState(environment.EnvState):
    pos: jax.Array  # shape=(), int32, state index row * 5 + col


@hyperparameters
class GridWorldParams(environment.EnvParams):
    """Numeric GridWorld settings: traced leaves, so a batch of them is one `vmap`.

    Attributes:
      goal_reward: reward for entering the goal.
      trap_reward: reward for entering a trap.
      traps_terminal: entering a trap ends the episode (else traps only pay their reward).
      max_steps_in_episode: time limit (truncation, not termination).
    """

    goal_reward: float = 1.0
    trap_reward: float = -1.0
    traps_terminal: bool = True
    max_steps_in_episode: int = 100

    def validate(self) -> None:
        check = lambda name, **kw: check_values("GridWorldParams", name, getattr(self, name), **kw)  # noqa: E731
        check("goal_reward")
        check("trap_reward")
        check_bool("GridWorldParams", "traps_terminal", self.traps_terminal)
        check("max_steps_in_episode", low=1.0, integer=True)


COURSE_DP_PARAMS = GridWorldParams(traps_terminal=False)
"""The dynamic-programming lessons' world: traps pay -1 and the walk goes on."""
COURSE_MODEL_FREE_PARAMS = GridWorldParams(
    goal_reward=100.0, trap_reward=-100.0, traps_terminal=True, max_steps_in_episode=10_000
)
"""The model-free lessons' world: +100 at the goal, -100 at the traps, both terminal."""


def _cell_masks(params: GridWorldParams) -> tuple[Array, Array]:
    """Per-state `[S]` arrays: the reward for entering the cell, and the terminal flag."""
    idx = jnp.arange(NUM_STATES)
    is_goal = idx == GOAL
    is_trap = jnp.isin(idx, jnp.array(TRAPS))
    enter_reward = jnp.where(is_goal, params.goal_reward, 0.0) + jnp.where(
        is_trap, params.trap_reward, 0.0
    )
    terminal = is_goal | (is_trap & jnp.asarray(params.traps_terminal, bool))
    return enter_reward.astype(jnp.float32), terminal


def _move(pos: Array, action: Array, params: GridWorldParams) -> tuple[Array, Array, Array]:
    """One deterministic step from state `pos`: `(next_pos, reward, terminated)`, all `[]`."""
    enter_reward, terminal = _cell_masks(params)
    row, col = pos // SIZE, pos % SIZE
    d = jnp.asarray(_MOVES)[action]
    new_row = jnp.clip(row + d[0], 0, SIZE - 1)
    new_col = jnp.clip(col + d[1], 0, SIZE - 1)
    at_terminal = terminal[pos]
    nxt = jnp.where(at_terminal, pos, new_row * SIZE + new_col).astype(jnp.int32)
    moved = nxt != pos
    reward = jnp.where(moved, enter_reward[nxt], 0.0).astype(jnp.float32)
    return nxt, reward, terminal[nxt]


class GridWorld(environment.Environment[GridWorldState, GridWorldParams]):
    """The 5x5 GridWorld (see the module docstring for layout, rewards and termination).

    Args:
      stay_action: add action 4, stay in place (static: it fixes the action count).
      one_hot: observe a one-hot float32 `[25]` instead of the int32 index `[]` (static).
      defaults: the params `default_params` returns (`GridWorldParams()` if None).
      env_id: the name under which it is registered (default `GridWorld-v0`, or
        `GridWorld5-v0` with the stay action).
    """

    def __init__(
        self,
        stay_action: bool = False,
        one_hot: bool = False,
        defaults: GridWorldParams | None = None,
        env_id: str | None = None,
    ) -> None:
        super().__init__()
        self.stay_action = bool(stay_action)
        self.one_hot = bool(one_hot)
        self.defaults = GridWorldParams() if defaults is None else defaults
        self.env_id = env_id

    @property
    def name(self) -> str:
        if self.env_id is not None:
            return self.env_id
        return "GridWorld5-v0" if self.stay_action else "GridWorld-v0"

    @property
    def default_params(self) -> GridWorldParams:
        return self.defaults

    @property
    def num_actions(self) -> int:
        return 5 if self.stay_action else 4

    def action_space(self, params: GridWorldParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.num_actions)

    def observation_space(self, params: GridWorldParams) -> spaces.Discrete | spaces.Box:
        if self.one_hot:
            return spaces.Box(0.0, 1.0, (NUM_STATES,), jnp.float32)
        return spaces.Discrete(NUM_STATES)

    def get_obs(self, state: GridWorldState, params: Any = None, key: Any = None) -> jax.Array:
        if self.one_hot:
            return jax.nn.one_hot(state.pos, NUM_STATES, dtype=jnp.float32)
        return jnp.asarray(state.pos, jnp.int32)

    def reset_env(
        self, key: jax.Array, params: GridWorldParams
    ) -> tuple[jax.Array, GridWorldState]:
        del key
        state = GridWorldState(time=0, pos=jnp.int32(START))
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        del key
        action = jnp.clip(jnp.asarray(action, jnp.int32), 0, self.num_actions - 1)
        pos, reward, terminated = _move(state.pos, action, params)
        new = GridWorldState(time=state.time + 1, pos=pos)
        return self.get_obs(new), new, reward, terminated, {}

    def is_terminated(self, state: GridWorldState, params: GridWorldParams) -> jax.Array:
        return _cell_masks(params)[1][state.pos]


def transition_model(env: GridWorld, params: GridWorldParams) -> tuple[Array, Array, Array]:
    """The exact one-step model of `env` under `params`, for dynamic programming.

    Pure in `params` (jittable, vmappable over a batch of `GridWorldParams`).

    Returns:
      `(P, R, terminal)`: `P [S, A, S]` float32 with `P[s, a, s'] = p(s' | s, a)`;
      `R [S, A]` float32, the expected reward `r(s, a)`; `terminal [S]` bool. Terminal
      states are absorbing with reward 0: `P[s, a, s] = 1`, `R[s, a] = 0`.
    """
    S, A = NUM_STATES, env.num_actions
    pos = jnp.repeat(jnp.arange(S, dtype=jnp.int32), A)
    act = jnp.tile(jnp.arange(A, dtype=jnp.int32), S)
    nxt, reward, _ = jax.vmap(_move, in_axes=(0, 0, None))(pos, act, params)
    P = jax.nn.one_hot(nxt, S, dtype=jnp.float32).reshape(S, A, S)
    R = reward.reshape(S, A)
    terminal = _cell_masks(params)[1]
    return P, R, terminal


def _policy_actions(policy: Any) -> list[list[int]]:
    """Per state the actions a policy prefers: `[S]` actions, or the max of `[S, A]` probs."""
    pi = np.asarray(policy)
    if pi.ndim == 1:
        return [[int(a)] for a in pi.reshape(NUM_STATES)]
    if pi.ndim != 2 or pi.shape[0] != NUM_STATES:
        raise ValueError(f"policy must be [25] actions or [25, A] probabilities, got {pi.shape}")
    return [list(np.flatnonzero(row >= row.max() - 1e-6)) for row in pi]


def _mark(s: int) -> str:
    return "G" if s == GOAL else "T" if s in TRAPS else "S" if s == START else ""


def _no_arrow(terminal: Any) -> np.ndarray:
    """`[S]` bool: cells drawn without an arrow (terminal ones; default goal and traps)."""
    if terminal is None:
        return np.isin(np.arange(NUM_STATES), (GOAL, *TRAPS))
    return np.asarray(terminal, bool).reshape(NUM_STATES)


def render_ascii(V: Any = None, policy: Any = None, terminal: Any = None) -> str:
    """The grid as text: per cell its mark (S start, G goal, T trap), the policy's arrows
    (`^ v < > o`, for `policy [25]` actions or `[25, A]` probabilities: every action of
    maximal probability) and the value `V [25]` if given. Cells where `terminal [25]` is
    true get no arrow (default: goal and traps, the control setting; pass the model's
    `terminal` to show the policy on non-terminal traps)."""
    values = None if V is None else np.asarray(V, np.float64).reshape(NUM_STATES)
    actions = None if policy is None else _policy_actions(policy)
    no_arrow = _no_arrow(terminal)
    arrows = [
        "" if actions is None or no_arrow[s] else "".join(ARROWS[a] for a in actions[s])
        for s in range(NUM_STATES)
    ]
    arrow_width = max(len(a) for a in arrows)
    cells = []
    for s in range(NUM_STATES):
        text = _mark(s).ljust(1) + (" " + arrows[s].ljust(arrow_width) if arrow_width else "")
        if values is not None:
            text += f" {values[s]:+6.3f}"
        cells.append(text)
    width = max(len(c) for c in cells)
    border = "+" + "+".join("-" * (width + 2) for _ in range(SIZE)) + "+"
    lines = [border]
    for r in range(SIZE):
        row = cells[r * SIZE : (r + 1) * SIZE]
        lines.append("| " + " | ".join(c.ljust(width) for c in row) + " |")
        lines.append(border)
    return "\n".join(lines)


def render_values(
    V: Any,
    policy: Any = None,
    path: str | os.PathLike | None = None,
    title: str = "",
    terminal: Any = None,
) -> Any:
    """Draw the grid with each cell's value `V [25]` and an arrow for the policy's action
    (`policy [25]` actions or `[25, A]` probabilities; every action of maximal probability
    gets an arrow, the stay action a dot), except where `terminal [25]` is true (default:
    goal and traps). The goal is shaded green, traps red. Saves a PNG to `path` if given.
    Returns the matplotlib `Figure` (Agg backend); close it with `plt.close(fig)`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    values = np.asarray(V, np.float64).reshape(NUM_STATES)
    actions = None if policy is None else _policy_actions(policy)
    no_arrow = _no_arrow(terminal)
    fig, ax = plt.subplots(figsize=(5.2, 5.2))
    for s in range(NUM_STATES):
        r, c = divmod(s, SIZE)
        x, y = c, SIZE - 1 - r
        color = "#b7e4b0" if s == GOAL else "#f4b6b6" if s in TRAPS else "white"
        ax.add_patch(Rectangle((x, y), 1, 1, facecolor=color, edgecolor="black"))
        mark = _mark(s)
        if mark:
            ax.text(x + 0.08, y + 0.9, mark, ha="left", va="top", fontsize=10, weight="bold")
        ax.text(x + 0.5, y + 0.2, f"{values[s]:.2f}", ha="center", va="center", fontsize=10)
        if actions is None or no_arrow[s]:
            continue
        for a in actions[s]:
            dr, dc = _MOVES[a]
            if dr == 0 and dc == 0:
                ax.plot(x + 0.5, y + 0.58, "ko", markersize=4)
                continue
            ax.arrow(
                x + 0.5,
                y + 0.58,
                0.22 * dc,
                -0.22 * dr,
                head_width=0.09,
                length_includes_head=True,
                color="black",
            )
    ax.set_xlim(0, SIZE)
    ax.set_ylim(0, SIZE)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


GRIDWORLDS = {
    "GridWorld-v0": GridWorld,
    "GridWorld5-v0": lambda: GridWorld(stay_action=True),
    "GridWorldDP-v0": lambda: GridWorld(defaults=COURSE_DP_PARAMS, env_id="GridWorldDP-v0"),
    "GridWorld100-v0": lambda: GridWorld(
        defaults=COURSE_MODEL_FREE_PARAMS, env_id="GridWorld100-v0"
    ),
}
