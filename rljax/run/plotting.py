"""Learning-curve figures: episode return against environment steps, mean and spread."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from rljax.core.driver import host_metrics


def smooth(returns: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over the last `window` chunks of each row of `[S, C]`,
    ignoring NaN (a chunk without a completed episode); NaN where the window holds none."""
    valid = ~np.isnan(returns)
    csum = np.cumsum(np.where(valid, returns, 0.0), axis=-1)
    ccount = np.cumsum(valid, axis=-1)
    pad = lambda a: np.concatenate([np.zeros_like(a[..., :window]), a[..., :-window]], -1)  # noqa: E731
    total, count = csum - pad(csum), ccount - pad(ccount)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def curve_stats(
    env_steps: np.ndarray, returns: np.ndarray, window: int = 1
) -> tuple[np.ndarray, ...]:
    """Mean, min and max over seeds of per-chunk returns `[S, C]` (smoothed over `window`
    chunks), ignoring NaN (chunks in which a seed completed no episode, or after it stopped).
    Returns `(x [C], mean, low, high)`, NaN where no seed has data."""
    steps = np.where(env_steps < 0, np.nan, env_steps)  # -1: chunk not run (seed stopped)
    ran_any = ~np.isnan(steps).all(axis=0)
    x = np.full(steps.shape[1], np.nan)
    x[ran_any] = np.nanmax(steps[:, ran_any], axis=0)
    ran = env_steps >= 0
    returns = np.where(ran, smooth(returns, window) if window > 1 else returns, np.nan)
    valid = ~np.isnan(returns)
    count = valid.sum(axis=0)
    safe = np.where(valid, returns, 0.0)
    mean = np.where(count > 0, safe.sum(0) / np.maximum(count, 1), np.nan)
    low = np.where(count > 0, np.where(valid, returns, np.inf).min(0), np.nan)
    high = np.where(count > 0, np.where(valid, returns, -np.inf).max(0), np.nan)
    return x, mean, low, high


def plot_learning_curves(
    runs: Mapping[str, tuple[np.ndarray, np.ndarray] | Mapping[str, Any]],
    path: str | os.PathLike,
    title: str = "",
    reference: float | None = None,
) -> None:
    """Save a PNG: for each label, `(env_steps [S, C], episode_return_mean [S, C])` or the
    driver's metrics dict (e.g. `train(...).metrics`), the mean over seeds as a line and
    the min-max spread as a band, each seed's curve first smoothed over about 2% of the
    run. A seed that stopped leaves the mean from then on."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, run in runs.items():
        if isinstance(run, Mapping):
            table = host_metrics(run)
            run = (table["env_steps"], table["episode_return_mean"])
        steps, returns = (np.asarray(x, float) for x in run)
        steps, returns = np.atleast_2d(steps), np.atleast_2d(returns)
        window = max(1, returns.shape[-1] // 50)
        x, mean, low, high = curve_stats(steps, returns, window)
        keep = ~np.isnan(mean) & ~np.isnan(x)
        n = np.asarray(returns).shape[0]
        (line,) = ax.plot(x[keep], mean[keep], label=f"{label} (mean, min-max of {n} seeds)")
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
