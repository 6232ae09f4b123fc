"""Saving and loading pytrees (parameters, whole training states) safely.

A file is `MAGIC`, a SHA-256 of the payload, then the payload (flax msgpack). Writes go to a
temporary file in the same folder, are flushed to disk, then renamed over the target, so a
file that `save` reported saved is complete, and a crash mid-write leaves the old one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

MAGIC = b"RLJAXCK1"
_DIGEST = 32


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupt, or does not fit the template."""


def save(path: str | os.PathLike, tree: Any) -> Path:
    """Atomically write `tree` (any pytree of arrays) to `path`; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    host = jax.tree.map(np.asarray, jax.device_get(tree))
    payload = serialization.to_bytes(host)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + hashlib.sha256(payload).digest() + payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike, template: Any) -> Any:
    """Read a pytree saved by `save`, with the structure, shapes and dtypes of `template`.

    Raises `CheckpointError` naming the file when it is missing, truncated, corrupt, or holds
    a tree of another structure or shape (e.g. a different network size).
    """
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    head = len(MAGIC) + _DIGEST
    if len(blob) < head or blob[: len(MAGIC)] != MAGIC:
        raise CheckpointError(f"{path} is not an rljax checkpoint (bad header)")
    digest, payload = blob[len(MAGIC) : head], blob[head:]
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(f"{path} is truncated or corrupt (checksum mismatch)")
    try:
        restored = serialization.from_bytes(template, payload)
    except Exception as e:  # flax raises several types for structure mismatches
        raise CheckpointError(f"{path} does not match the expected structure: {e}") from e
    want = jax.tree.map(lambda x: (np.shape(x), np.asarray(x).dtype), template)
    got = jax.tree.map(lambda x: (np.shape(x), np.asarray(x).dtype), restored)
    if want != got:
        raise CheckpointError(
            f"{path} holds arrays of other shapes or dtypes than expected "
            "(was it saved with another configuration?)"
        )
    return restored
