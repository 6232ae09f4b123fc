"""JAX's persistent compilation cache: the second run of the same program, in a new
process, loads its compiled code instead of compiling again."""

from __future__ import annotations

import os
from pathlib import Path

import jax

DISABLE = "RLJAX_NO_COMPILE_CACHE"
FOLDER = "RLJAX_COMPILE_CACHE_DIR"
# Least recently used entries are evicted beyond this size (a DQN chunk is a few MB).
MAX_BYTES = 2 * 1024**3


def default_cache_dir() -> Path:
    """`$RLJAX_COMPILE_CACHE_DIR` if set, else `$XDG_CACHE_HOME/rljax/jax`
    (`~/.cache/rljax/jax` by default)."""
    if os.environ.get(FOLDER):
        return Path(os.environ[FOLDER])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rljax" / "jax"


def enable_compile_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache in `path` (default `default_cache_dir()`)
    for every program that takes more than a tenth of a second to compile. Does nothing
    (returns None) when the environment variable `RLJAX_NO_COMPILE_CACHE` is set, or when a
    cache folder was already chosen (by the user or an earlier call).

    The cache holds at most 2 GiB (least recently used entries go first) and is shared
    safely by processes running at once: JAX locks it with `filelock` while it reads,
    writes or evicts, so no process reads an entry another is still writing."""
    if os.environ.get(DISABLE):
        return None
    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    folder = Path(path) if path is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    return folder
