"""The course's moving-ghost Pacman: a 5x5 grid, three sliding ghosts and a strawberry.

`Pacman-v0` is the world of the course's Deep SARSA lesson (rlcode/reinforcement-learning-kr,
`1-grid-world/6-deep-sarsa/environment.py`), `PacmanReinforce-v0` that of its REINFORCE
lesson (`7-reinforce/environment.py`): the same world that also pays `step_reward = -0.1`
on every step. `tests/test_pacman.py` checks both transition by transition against the
course's rules re-implemented in plain Python.

Layout (row, col), rows 0..4 top to bottom, cols 0..4 left to right (default layout)::

    P . . . .        P: Pacman, starts at (0, 0)
    G . . . .        G: ghost 0 at (1, 0)
    . G . . .           ghost 1 at (2, 1)
    . . G . .           ghost 2 at (3, 2), all three moving right at the start
    . . . . S        S: the strawberry (goal) at (4, 4)

Actions (5), the course's order: 0 up, 1 down, 2 right, 3 left, 4 stay. A move into the
outer wall leaves Pacman where it is (`step` clips an out-of-range action into the valid
ones).

Ghosts slide horizontally in their own row. A ghost about to leave the grid turns back
and moves one cell the other way in the same move (a ghost at col 4 moving right goes to
col 3 and now moves left). The ghosts move on every `ghost_period`-th step (2, the
course's), counted by `state.clock`: the steps taken since the environment was made. As
in the course, this clock runs on across episodes (the course's step counter is never
reset), so the ghosts of an episode that starts after an odd number of steps in all first
stand still. A step that starts at `clock % ghost_period == 0` moves them.

Order within a step (the course's): first the ghosts move (on their steps), then Pacman.
Then the rewards of the cell Pacman ends on add up:

* `goal_reward` (+1) on the strawberry, which terminates the episode;
* `ghost_reward` (-1) for each ghost on that cell (ghosts that pass through Pacman, or
  swap cells with it, do not count). With `ghost_terminal=False` (the course's) the
  episode goes on; with `ghost_terminal=True` it terminates;
* `step_reward` on every step (0 in `Pacman-v0`, -0.1 in `PacmanReinforce-v0`).

The course has no time limit. Episodes are truncated (not terminated) after
`max_steps_in_episode` = 10,000 steps, far beyond any episode of the course's agents: a
bound is needed only so that a policy that never reaches the strawberry (hiding from the
ghosts) ends. The gymnax base class auto-resets and keeps the pre-reset observation in
`info["final_observation"]`. Should `step_env` be called from the goal cell it is
absorbing: nothing moves, reward 0, terminated.

Observation (float32 `[15]`, the course's `get_state`), positions relative to Pacman
(`dx = col - pac_col`, `dy = row - pac_row`), for ghosts 0, 1, 2 in order and then the
strawberry::

    [g0_dx, g0_dy, -1, g0_dir, g1_dx, g1_dy, -1, g1_dir, g2_dx, g2_dy, -1, g2_dir,
     goal_dx, goal_dy, +1]

where `-1` / `+1` are the labels (ghost / strawberry) and `gi_dir` is the course's
direction label: **-1 while the ghost moves right, +1 while it moves left** (the last
direction it moved in; it flips at the wall on the ghost's next move). `state.ghost_dirs`
holds the column step instead (+1 right, -1 left): `gi_dir = -ghost_dirs[i]`.

The ghost layout is static: `Pacman(ghost_rows=(1, 2, 3), ghost_cols=(0, 1, 2))`. It must
hold exactly three ghosts inside the grid, none on the start or the goal cell.
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
NUM_GHOSTS = 3
START = (0, 0)
GOAL = (SIZE - 1, SIZE - 1)
GHOST_ROWS = (1, 2, 3)
GHOST_COLS = (0, 1, 2)
GHOST_DIRS = (1, 1, 1)  # initial column steps: all three move right
OBS_SIZE = 4 * NUM_GHOSTS + 3
ACTION_NAMES = ("up", "down", "right", "left", "stay")
# (d_row, d_col) per action, in the course's order.
_MOVES = np.array([[-1, 0], [1, 0], [0, 1], [0, -1], [0, 0]], np.int32)


@struct.dataclass
class PacmanState(environment.EnvState):
    clock: jax.Array  # shape=(), int32, steps since the environment was made (not reset)
    pacman: jax.Array  # shape=(2,), int32, (row, col)
    ghost_cols: jax.Array  # shape=(3,), int32
    ghost_dirs: jax.Array  # shape=(3,), int32, +1 right or -1 left


@hyperparameters
class PacmanParams(environment.EnvParams):
    """Numeric Pacman settings: traced leaves, so a batch of them is one `vmap`.

    Attributes:
      goal_reward: reward for entering the strawberry (always terminal).
      ghost_reward: reward per ghost on Pacman's cell after a step.
      step_reward: reward added on every step (the course's REINFORCE world: -0.1).
      ghost_terminal: touching a ghost ends the episode (default False, the course's
        version: it only pays `ghost_reward`).
      ghost_period: ghosts move on the steps that start at `clock % ghost_period == 0`.
      max_steps_in_episode: time limit (truncation, not termination; the course has none).
    """

    goal_reward: float = 1.0
    ghost_reward: float = -1.0
    step_reward: float = 0.0
    ghost_terminal: bool = False
    ghost_period: int = 2
    max_steps_in_episode: int = 10_000

    def validate(self) -> None:
        check = lambda name, **kw: check_values("PacmanParams", name, getattr(self, name), **kw)  # noqa: E731
        check("goal_reward")
        check("ghost_reward")
        check("step_reward")
        check_bool("PacmanParams", "ghost_terminal", self.ghost_terminal)
        check("ghost_period", low=1.0, integer=True)
        check("max_steps_in_episode", low=1.0, integer=True)


REINFORCE_PARAMS = PacmanParams(step_reward=-0.1)
"""The course's REINFORCE world (`PacmanReinforce-v0`): -0.1 on every step."""


def _check_layout(ghost_rows: Any, ghost_cols: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Validate a ghost layout; return it as two tuples of ints."""
    layout = {"ghost_rows": ghost_rows, "ghost_cols": ghost_cols}
    out = {}
    for name, value in layout.items():
        try:
            cells = tuple(value)
        except TypeError:
            cells = None
        ok = (
            cells is not None
            and len(cells) == NUM_GHOSTS
            and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in cells)
            and all(0 <= v < SIZE for v in cells)
        )
        if not ok:
            raise ValueError(
                f"unknown ghost layout: Pacman.{name} must be {NUM_GHOSTS} ints in "
                f"[0, {SIZE - 1}], got {value!r}"
            )
        out[name] = tuple(int(v) for v in cells)
    for i, cell in enumerate(zip(out["ghost_rows"], out["ghost_cols"], strict=True)):
        if cell in (START, GOAL):
            raise ValueError(
                f"unknown ghost layout: ghost {i} (Pacman.ghost_rows, Pacman.ghost_cols) "
                f"sits on the {'start' if cell == START else 'goal'} cell {cell}"
            )
    return out["ghost_rows"], out["ghost_cols"]


def observe(state: PacmanState, ghost_rows: Any = GHOST_ROWS) -> Array:
    """The float32 `[15]` observation of one state (layout in the module docstring)."""
    pac = jnp.asarray(state.pacman, jnp.int32)
    rows = jnp.asarray(ghost_rows, jnp.int32)
    cols = jnp.asarray(state.ghost_cols, jnp.int32)
    ghosts = jnp.stack(
        [
            cols - pac[1],
            rows - pac[0],
            jnp.full((NUM_GHOSTS,), -1, jnp.int32),
            -jnp.asarray(state.ghost_dirs, jnp.int32),  # the course's label: -1 = right
        ],
        axis=-1,
    ).reshape(-1)
    goal = jnp.stack([GOAL[1] - pac[1], GOAL[0] - pac[0], jnp.int32(1)])
    return jnp.concatenate([ghosts, goal]).astype(jnp.float32)


def move_ghosts(ghost_cols: Array, ghost_dirs: Array) -> tuple[Array, Array]:
    """One ghost move `[3], [3] -> [3], [3]`: a ghost about to leave the grid turns back
    and moves one cell the other way."""
    blocked = (ghost_cols + ghost_dirs < 0) | (ghost_cols + ghost_dirs > SIZE - 1)
    dirs = jnp.where(blocked, -ghost_dirs, ghost_dirs).astype(jnp.int32)
    return (ghost_cols + dirs).astype(jnp.int32), dirs


class Pacman(environment.Environment[PacmanState, PacmanParams]):
    """The moving-ghost Pacman grid (see the module docstring for rules and observation).

    Args:
      ghost_rows: the row of each of the 3 ghosts (static, fixed for the episode).
      ghost_cols: the starting column of each ghost (static).

    Raises:
      ValueError: for an unknown ghost layout (not 3 ghosts, outside the grid, or a ghost
        on the start or goal cell).
    """

    # `step` is gymnax's but for the clock, which `step_env` advances too: within an
    # episode the two agree (`rljax.core.evaluation.steps_within_episodes`).
    AUTO_RESET_STEP = True

    def __init__(self, ghost_rows: tuple = GHOST_ROWS, ghost_cols: tuple = GHOST_COLS) -> None:
        super().__init__()
        self.ghost_rows, self.ghost_cols = _check_layout(ghost_rows, ghost_cols)

    @property
    def name(self) -> str:
        return "Pacman-v0"

    @property
    def default_params(self) -> PacmanParams:
        return PacmanParams()

    @property
    def num_actions(self) -> int:
        return len(ACTION_NAMES)

    def action_space(self, params: PacmanParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.num_actions)

    def observation_space(self, params: PacmanParams) -> spaces.Box:
        return spaces.Box(-(SIZE - 1), SIZE - 1, (OBS_SIZE,), jnp.float32)

    def get_obs(self, state: PacmanState, params: Any = None, key: Any = None) -> jax.Array:
        return observe(state, self.ghost_rows)

    def initial_state(self, clock: Any = 0) -> PacmanState:
        """The state every episode starts from (the layout is deterministic), at `clock`."""
        return PacmanState(
            time=jnp.int32(0),
            clock=jnp.asarray(clock, jnp.int32),
            pacman=jnp.array(START, jnp.int32),
            ghost_cols=jnp.array(self.ghost_cols, jnp.int32),
            ghost_dirs=jnp.array(GHOST_DIRS, jnp.int32),
        )

    def reset_env(self, key: jax.Array, params: PacmanParams) -> tuple[jax.Array, PacmanState]:
        del key
        state = self.initial_state()
        return self.get_obs(state), state

    def step(
        self,
        key: jax.Array,
        state: PacmanState,
        action: int | jax.Array,
        params: PacmanParams | None = None,
    ) -> tuple[jax.Array, PacmanState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """gymnax's `step` (auto-reset at the episode's end), except that the ghosts' clock
        runs on through the reset, as the course's step counter does."""
        obs, new, reward, terminated, truncated, info = super().step(key, state, action, params)
        return obs, new.replace(clock=state.clock + 1), reward, terminated, truncated, info

    def step_env(self, key, state, action, params):
        del key
        action = jnp.clip(jnp.asarray(action, jnp.int32), 0, self.num_actions - 1)
        goal = jnp.array(GOAL, jnp.int32)
        at_goal = jnp.all(state.pacman == goal)
        # First the ghosts, on the steps that start at clock % ghost_period == 0 ...
        moved_cols, moved_dirs = move_ghosts(state.ghost_cols, state.ghost_dirs)
        ghosts_move = (state.clock % params.ghost_period == 0) & ~at_goal
        cols = jnp.where(ghosts_move, moved_cols, state.ghost_cols).astype(jnp.int32)
        dirs = jnp.where(ghosts_move, moved_dirs, state.ghost_dirs).astype(jnp.int32)
        # ... then Pacman; a bump into the wall leaves it in place. The goal is absorbing
        # (the base class resets before this can happen).
        pac = jnp.clip(state.pacman + jnp.asarray(_MOVES)[action], 0, SIZE - 1)
        pac = jnp.where(at_goal, state.pacman, pac).astype(jnp.int32)
        rows = jnp.asarray(self.ghost_rows, jnp.int32)
        hits = jnp.sum((rows == pac[0]) & (cols == pac[1]))
        reached = jnp.all(pac == goal) & ~at_goal
        reward = (
            jnp.where(reached, params.goal_reward, 0.0)
            + hits * params.ghost_reward
            + params.step_reward
        )
        reward = jnp.where(at_goal, 0.0, reward)
        ghost_ends = jnp.asarray(params.ghost_terminal, bool) & (hits > 0)
        terminated = at_goal | reached | ghost_ends
        new = PacmanState(
            time=state.time + 1, clock=state.clock + 1, pacman=pac, ghost_cols=cols, ghost_dirs=dirs
        )
        return self.get_obs(new), new, jnp.asarray(reward, jnp.float32), terminated, {}

    def is_terminated(self, state: PacmanState, params: PacmanParams) -> jax.Array:
        at_goal = jnp.all(state.pacman == jnp.array(GOAL, jnp.int32))
        rows = jnp.asarray(self.ghost_rows, jnp.int32)
        on_ghost = jnp.any((rows == state.pacman[0]) & (state.ghost_cols == state.pacman[1]))
        return at_goal | (on_ghost & (jnp.asarray(params.ghost_terminal, bool)))

    def render_ascii(self, state: PacmanState) -> str:
        """`render_ascii(state, self.ghost_rows)`."""
        return render_ascii(state, self.ghost_rows)

    def render_episode(
        self, states: Any, path: str | os.PathLike, title: str = ""
    ) -> str | os.PathLike:
        """`render_episode(states, path, self.ghost_rows, title)`."""
        return render_episode(states, path, self.ghost_rows, title)


class PacmanReinforce(Pacman):
    """The course's REINFORCE world: `Pacman` with `step_reward = -0.1` (its default
    params are `REINFORCE_PARAMS`)."""

    @property
    def name(self) -> str:
        return "PacmanReinforce-v0"

    @property
    def default_params(self) -> PacmanParams:
        return REINFORCE_PARAMS


def render_ascii(state: PacmanState, ghost_rows: Any = GHOST_ROWS) -> str:
    """One (unbatched) state as text: `P` Pacman, `G` a ghost (with `<`/`>` for its
    direction), `X` Pacman on a ghost's cell, `S` the strawberry, `.` an empty cell."""
    grid = [["." for _ in range(SIZE)] for _ in range(SIZE)]
    grid[GOAL[0]][GOAL[1]] = "S"
    cols = np.asarray(state.ghost_cols).reshape(-1)
    dirs = np.asarray(state.ghost_dirs).reshape(-1)
    for r, c in zip(ghost_rows, cols, strict=True):
        grid[int(r)][int(c)] = "G"
    pr, pc = (int(v) for v in np.asarray(state.pacman).reshape(2))
    grid[pr][pc] = "X" if grid[pr][pc] == "G" else "P"
    arrows = " ".join(f"g{i}{'>' if d > 0 else '<'}" for i, d in enumerate(dirs))
    lines = [" ".join(row) for row in grid]
    clock = int(np.asarray(state.clock))
    lines.append(f"t={int(np.asarray(state.time))} clock={clock} {arrows}")
    return "\n".join(lines)


def _as_frames(states: Any) -> dict[str, np.ndarray]:
    """A list of states or a stacked `[T, ...]` state -> numpy arrays with a leading T."""
    if isinstance(states, list | tuple):
        states = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *states)
    pacman = np.asarray(states.pacman).reshape(-1, 2)
    T = pacman.shape[0]
    return {
        "time": np.asarray(states.time).reshape(T),
        "pacman": pacman,
        "ghost_cols": np.asarray(states.ghost_cols).reshape(T, NUM_GHOSTS),
        "ghost_dirs": np.asarray(states.ghost_dirs).reshape(T, NUM_GHOSTS),
    }


def _draw(ax: Any, frames: dict[str, np.ndarray], t: int, ghost_rows: Any) -> None:
    """Draw frame `t` on `ax`: grid, strawberry, ghosts, Pacman and its path so far (since
    the last reset, recognised by `time` not increasing)."""
    from matplotlib.patches import Circle, Rectangle

    ax.cla()
    for r in range(SIZE):
        for c in range(SIZE):
            ax.add_patch(Rectangle((c, r), 1, 1, facecolor="white", edgecolor="0.6"))
    gr, gc = GOAL
    ax.add_patch(Circle((gc + 0.5, gr + 0.5), 0.3, color="crimson"))
    ax.text(gc + 0.5, gr + 0.5, "S", ha="center", va="center", color="white", weight="bold")
    start = t
    while start > 0 and frames["time"][start] > frames["time"][start - 1]:
        start -= 1
    trail = frames["pacman"][start : t + 1]
    ax.plot(trail[:, 1] + 0.5, trail[:, 0] + 0.5, "-o", color="orange", markersize=3, lw=2)
    for r, c, d in zip(ghost_rows, frames["ghost_cols"][t], frames["ghost_dirs"][t], strict=True):
        ax.add_patch(Rectangle((c + 0.2, r + 0.2), 0.6, 0.6, color="mediumpurple"))
        ax.text(c + 0.5, r + 0.5, "G", ha="center", va="center", color="white", weight="bold")
        ax.arrow(c + 0.5, r + 0.12, 0.3 * d, 0.0, head_width=0.08, length_includes_head=True)
    pr, pc = frames["pacman"][t]
    ax.add_patch(Circle((pc + 0.5, pr + 0.5), 0.25, color="gold", zorder=3))
    ax.text(pc + 0.5, pr + 0.5, "P", ha="center", va="center", weight="bold", zorder=4)
    ax.set_xlim(0, SIZE)
    ax.set_ylim(SIZE, 0)  # row 0 at the top
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"t={int(frames['time'][t])}", fontsize=8)


def render_episode(
    states: Any,
    path: str | os.PathLike,
    ghost_rows: Any = GHOST_ROWS,
    title: str = "",
) -> str | os.PathLike:
    """Draw a sequence of states (a list of `PacmanState`, or one stacked `[T, ...]` state
    as a `lax.scan` returns) with the ghosts, the strawberry and Pacman's path so far.

    A `path` ending in `.gif` gets an animated GIF (matplotlib's `PillowWriter`, one frame
    per state) when pillow is importable; without pillow it falls back to a PNG next to it
    (`path` with the suffix `.png`). Any other `path` gets one PNG figure with a subplot
    per state (at most 10 per row). Uses the Agg backend.

    Returns:
      the path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = _as_frames(states)
    T = frames["pacman"].shape[0]
    if T == 0:
        raise ValueError("render_episode needs at least one state")
    out = path
    if os.fspath(path).lower().endswith(".gif"):
        try:
            import PIL  # noqa: F401
        except ImportError:
            out = os.path.splitext(os.fspath(path))[0] + ".png"
        else:
            from matplotlib.animation import PillowWriter

            fig, ax = plt.subplots(figsize=(3, 3.2))
            try:
                if title:
                    fig.suptitle(title)
                writer = PillowWriter(fps=4)
                with writer.saving(fig, os.fspath(path), dpi=80):
                    for t in range(T):
                        _draw(ax, frames, t, ghost_rows)
                        writer.grab_frame()
            finally:
                plt.close(fig)
            return path
    ncols = min(T, 10)
    nrows = -(-T // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.8 * ncols, 1.9 * nrows), squeeze=False)
    try:
        for t, ax in enumerate(axes.reshape(-1)):
            if t < T:
                _draw(ax, frames, t, ghost_rows)
            else:
                ax.axis("off")
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(out, dpi=80, format="png")
    finally:
        plt.close(fig)
    return out


PACMAN = {"Pacman-v0": Pacman, "PacmanReinforce-v0": PacmanReinforce}
