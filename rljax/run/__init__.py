"""The host side: the algorithm registry, the one chunk loop, run folders, checkpoints,
sharding across devices, plotting and the command line. It may use every layer below;
nothing below imports it."""

from rljax.run import checkpoint, folders, loop, plotting, registry, sharding
from rljax.run.loop import RunResult, chunk_loop, jitted, print_progress, run_batch

__all__ = [
    "RunResult",
    "checkpoint",
    "chunk_loop",
    "folders",
    "jitted",
    "loop",
    "plotting",
    "print_progress",
    "registry",
    "run_batch",
    "sharding",
]
