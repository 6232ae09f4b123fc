"""Learning-curve figures: episode return against environment steps, mean and spread."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np


def curve_stats(env_steps: np.ndarray, returns: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mean, min and max over seeds of per-chunk returns `[S, C]`, ignoring NaN (chunks in
    which a seed completed no episode). Returns `(x [C], mean, low, high)`, NaN where no seed
    completed an episode."""
    x = np.nanmax(np.where(env_steps < 0, np.nan, env_steps), axis=0)
    valid = ~np.isnan(returns)
    count = valid.sum(axis=0)
    safe = np.where(valid, returns, 0.0)
    mean = np.where(count > 0, safe.sum(0) / np.maximum(count, 1), np.nan)
    low = np.where(count > 0, np.where(valid, returns, np.inf).min(0), np.nan)
    high = np.where(count > 0, np.where(valid, returns, -np.inf).max(0), np.nan)
    return x, mean, low, high


def plot_learning_curves(
    runs: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    title: str = "",
    reference: float | None = None,
) -> None:
    """Save a PNG: for each label, `(env_steps [S, C], episode_return_mean [S, C])`, the
    mean over seeds as a line and the min-max spread as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, (steps, returns) in runs.items():
        x, mean, low, high = curve_stats(np.asarray(steps, float), np.asarray(returns, float))
        keep = ~np.isnan(mean) & ~np.isnan(x)
        n = np.asarray(returns).shape[0]
        (line,) = ax.plot(x[keep], mean[keep], label=f"{label} (mean of {n})")
        ax.fill_between(x[keep], low[keep], high[keep], color=line.get_color(), alpha=0.2)
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("environment steps per seed")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
