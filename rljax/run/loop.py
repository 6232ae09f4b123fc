"""The one chunk loop: run a `Trainer` from the host, chunk by chunk, for a batch of runs.

One compiled `vmap(run_chunk)` program (`compile_chunk`) is called repeatedly with the
carried state (no recompilation per chunk); between chunks the host sees each chunk's
metrics, so progress can be shown, checkpoints written and metrics collected without
accumulating on the device. `run_batch`, run folders (`rljax.run.folders`) and the
examples all use `chunk_loop`.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rljax.core.driver import RunState, Trainer, greedy_chunk, host_metrics
from rljax.core.keys import is_key, keys_to_data
from rljax.core.types import Key
from rljax.run.programs import StoredProgram
from rljax.run.sharding import resolve_devices, runs_sharding, shard_runs


class Progress(NamedTuple):
    """What the loop reports after each chunk (host values, over all runs)."""

    chunk: int  # chunks done
    num_chunks: int
    env_steps: int  # per run
    total_env_steps: int  # per run
    seconds: float  # training time so far (compilation excluded)
    recent_return: float  # mean over runs of the last completed-episode mean (NaN: none yet)
    stopped: int  # runs whose stopping criterion was met


class ChunkDone:
    """One step of `chunk_loop`: the state after `chunk` chunks and that chunk's metrics.

    `state` (leaves `[S, ...]`, every run) is put together when first read: while finished
    runs are out of the batch it costs a copy through the host, so a caller that needs it
    only now and then (a checkpoint) reads it only then. Read it before the loop goes on:
    the next chunk takes the batch's buffers (donated), as it did before this was lazy."""

    def __init__(
        self,
        chunk: int,
        state: Callable[[], RunState],
        row: dict[str, np.ndarray],
        progress: Progress,
        all_stopped: bool,
        compile_seconds: float,
        batch_sizes: tuple[int, ...] = (),
    ) -> None:
        self.chunk = chunk
        self._state = state
        self.row = row  # each [S]; NaN (-1 for counts) for runs that did not run
        self.progress = progress
        self.all_stopped = all_stopped
        self.compile_seconds = compile_seconds  # compiling chunks so far (not in progress)
        self.batch_sizes = batch_sizes  # the batch sizes run so far, in order

    @functools.cached_property
    def state(self) -> RunState:
        return self._state()


class RunResult(NamedTuple):
    """A finished batch of runs. Leading axis `[S]` is the run (seed, setting)."""

    state: RunState  # device arrays, leaves [S, ...]
    metrics: dict[str, np.ndarray]  # [S, chunks_run]
    eval_returns: np.ndarray  # [S, eval_episodes]
    compile_seconds: float
    train_seconds: float
    batch_sizes: tuple[int, ...] = ()  # the batch sizes it ran at (compacted), in order


# LLVM's -O1 instead of XLA's default -O3 on the CPU: compiling DQN's chunk took 4.9 s
# instead of 7.0 s and A2C's 7.3 s instead of 8.3 s, and a chunk ran as fast or faster
# (`default` presets, one run, 3 fresh processes each, interleaved, on 2 cores; benchmarks/
# sweep.py's cold compile figures use it). RL's small kernels gain nothing from -O3.
# YNNPACK (XLA's CPU kernel library) for matrix products and convolutions only: by default
# XLA also hands it reductions, and over an action axis of 4 its per-call cost dominated:
# tabular Q-learning's chunk (8,192 runs, one device) ran 1.5x faster without, DQN's and
# Breakout's as fast, with the same bits (A2C's bits differ: it sums in another order).
CPU_COMPILER_OPTIONS = {
    "xla_backend_optimization_level": 1,
    "xla_cpu_experimental_ynn_fusion_type": (
        "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION"
    ),
}


# `init` runs once per batch, so only its compilation counts: without XLA's MLIR fusion
# emitters and LLVM's expensive passes it compiled in 3.67 and 2.87 CPU seconds instead of
# 5.19 and 3.72 for A2C's `default` preset (DQN's: 0.74, 0.75 instead of 1.43, 1.09), two
# fresh processes each, with the same bits. (A chunk compiled so ran 2.5x slower.)
INIT_COMPILER_OPTIONS = {
    "xla_cpu_use_fusion_emitters": False,
    "xla_llvm_disable_expensive_passes": True,
}


def compiler_options(piece: str | None = None) -> dict[str, Any]:
    """The XLA options `programs` compiles with: `CPU_COMPILER_OPTIONS` when JAX's default
    backend is the CPU (those this jaxlib knows), none elsewhere; for `piece="init"` also
    `INIT_COMPILER_OPTIONS`."""
    if jax.default_backend() != "cpu":
        return {}
    known = dict(_cpu_options_known())
    wanted = [*CPU_COMPILER_OPTIONS, *(INIT_COMPILER_OPTIONS if piece == "init" else ())]
    return {k: known[k] for k in wanted if k in known}


@functools.cache
def _cpu_options_known() -> tuple[tuple[str, Any], ...]:
    """`CPU_COMPILER_OPTIONS` and `INIT_COMPILER_OPTIONS` less any that this jaxlib's XLA
    rejects (an older one may not have the YNNPACK option): all tried at once on a tiny
    program, then, if that fails, one by one (about 50 ms per compilation, once per
    process)."""
    options = {**CPU_COMPILER_OPTIONS, **INIT_COMPILER_OPTIONS}

    def accepted(options: dict[str, Any]) -> bool:
        try:
            jax.jit(jnp.negative, compiler_options=options).lower(1.0).compile()
        except Exception:  # XLA names no error class for an unknown option
            return False
        return True

    if accepted(options):
        return tuple(options.items())
    return tuple((k, v) for k, v in options.items() if accepted({k: v}))


class Programs(NamedTuple):
    """A trainer's compiled pieces (`StoredProgram`s of `jit(vmap(...))`), built once."""

    init: StoredProgram
    run_chunk: StoredProgram  # its input donated
    evaluate: StoredProgram
    train_chunk: StoredProgram | None  # the greedy stopping rule's parts, else None
    greedy_stop: StoredProgram | None

    @property
    def chunk(self) -> StoredProgram:
        """The program `chunk_loop` runs each chunk: `train_chunk` with the greedy stopping
        rule (its check then runs as `evaluate` and `greedy_stop`), else `run_chunk`."""
        return self.run_chunk if self.train_chunk is None else self.train_chunk


def jitted(trainer: Trainer, sharding: Any = None) -> tuple[Callable, Callable, Callable]:
    """`jit(vmap(...))` of the trainer's `init`, `run_chunk` (its input donated) and
    `evaluate`: the first three of `programs(trainer, sharding)`."""
    return tuple(programs(trainer, sharding)[:3])


def programs(trainer: Trainer, sharding: Any = None) -> Programs:
    """`jit(vmap(...))` of each of the trainer's pieces, built once per trainer so that
    repeated runs and evaluations reuse their compilations, with `compiler_options()`. With
    a `sharding` of the runs axis, every input and output is laid out by it. A trainer with
    a `fingerprint` (the registry's) keeps its traced programs on disk while the
    compilation cache is on, so that a new process reads them instead of tracing again
    (`rljax.run.programs.StoredProgram`)."""
    return _programs(trainer, sharding)  # one cache entry, however `sharding` is passed


@functools.cache
def _programs(trainer: Trainer, sharding: Any) -> Programs:
    def stored(name: str, fun: Callable | None) -> StoredProgram | None:
        if fun is None:
            return None
        return StoredProgram(
            jax.vmap(fun),
            None if trainer.fingerprint is None else f"{trainer.fingerprint}:{name}",
            donate=name in ("run_chunk", "train_chunk"),
            sharding=sharding,
            compiler_options=compiler_options(name),
        )

    return Programs(*(stored(name, getattr(trainer, name)) for name in Programs._fields))


def compile_chunk(trainer: Trainer, batch: RunState, sharding: Any = None) -> ChunkStep:
    """The compiled step of `chunk_loop` for batches like `batch` (leaves `[S, ...]`):
    `step(batch) -> (batch, metrics)`, one chunk of every run (`run_chunk`). With the greedy
    stopping rule its three programs run in turn: `train_chunk`, `evaluate` (the program
    that evaluates the runs at the end as well, so it is compiled once) and `greedy_stop`;
    inside one chunk program, the evaluation cost A2C's chunk a third of its compilation.
    `compile_seconds` is what building its programs took the first time (for a stored
    program, in the process that first built it): what another batch size costs."""
    p = programs(trainer, sharding)
    built: list[tuple[Callable, float]] = []

    def build(program: StoredProgram, *args: Any) -> Callable:
        t = time.perf_counter()
        fn = program.lower(*args).compile()
        built.append((fn, time.perf_counter() - t))
        return fn

    step = build(p.chunk, batch)
    if p.train_chunk is not None:
        evaluate = build(p.evaluate, batch.agent, batch.key)  # the eval keys are like these
        stop = build(p.greedy_stop, *_stop_inputs(trainer, batch))
        step = functools.partial(greedy_chunk, step, evaluate, stop)
    return ChunkStep(step, sum(getattr(f, "compile_seconds", took) for f, took in built))


def _stop_inputs(trainer: Trainer, batch: Any) -> tuple:
    """`greedy_stop`'s inputs for a batch like `batch` (arrays or shapes): its `stopped`,
    `stop_step` and `env_steps`, and the shape of the evaluation's returns."""
    returns = jax.ShapeDtypeStruct(
        (*batch.stopped.shape, trainer.config.eval_episodes),
        jnp.float32,
        sharding=getattr(batch.stopped, "sharding", None),
    )
    return batch.stopped, batch.stop_step, batch.env_steps, returns


class ChunkStep(NamedTuple):
    """`compile_chunk`'s step, and what building its programs took the first time."""

    step: Callable[[RunState], tuple[RunState, dict]]
    compile_seconds: float

    def __call__(self, batch: RunState) -> tuple[RunState, dict]:
        return self.step(batch)


def init_runs(trainer: Trainer, keys: Any, hparams: Any, sharding: Any = None) -> RunState:
    """`programs(trainer, sharding)`'s `init` of the runs `keys [S]` with `hparams` (leaves
    `[S, ...]`). When the programs are stored, the chunk's programs for `init`'s state are
    built on background threads meanwhile (`StoredProgram.prefetch`): a warm start loads
    the compiled programs at once, and a cold one compiles them at once. Tracing holds
    Python's lock, so a cold start traces the chunk first (after `init`'s tracing, for its
    shapes), then `init` and the greedy rule's programs while the chunk compiles: DQN's
    cold start took 5.40-6.06 s instead of 6.12-6.59 before the first chunk, A2C's
    8.07-8.58 instead of 8.30-8.88 (3 interleaved pairs of fresh processes)."""
    p = programs(trainer, sharding)
    shapes = p.init.output_shapes(keys, hparams)
    if shapes is not None:
        traced = p.chunk.prefetch(shapes)
        if p.train_chunk is not None:  # traced once the chunk is: it compiles longest
            p.evaluate.prefetch(shapes.agent, shapes.key, after=traced)
            p.greedy_stop.prefetch(*_stop_inputs(trainer, shapes), after=traced)
        traced.wait()  # one thread traces at a time: the chunk first
    return p.init(keys, hparams)


def to_host(tree: Any) -> Any:
    """Device arrays to NumPy; on several hosts, each gathered from every host's shards
    (`process_allgather`), so that every host sees the whole batch."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
    return jax.tree.map(np.asarray, jax.device_get(tree))


def bucket(n: int, multiple: int = 1) -> int:
    """The batch size that holds `n` runs: `multiple * 2^k` (at least 2), the smallest such
    `>= n`, so that a shrinking batch compiles at most a few shapes. (A batch of one would
    compile without its batch axis, and round differently.)"""
    size = multiple
    while size < max(n, 2):
        size *= 2
    return size


class _HostRuns:
    """A batch of runs' state copied to the host as NumPy (key arrays as their key data),
    whose rows (runs) can be taken and written, and put back on the devices.

    Compaction moves runs between batches through the host: a jitted gather and scatter
    of the state compiled once per batch size (about 1.5 s for DQN's 71 leaves on 2
    devices, and once more when the scatter's output came back laid out otherwise), while
    copying the state costs milliseconds and is needed only when the batch shrinks or a
    caller asks for every run's state."""

    def __init__(self, treedef: Any, impls: list, leaves: list[np.ndarray]) -> None:
        self.treedef, self.impls, self.leaves = treedef, impls, leaves

    @classmethod
    def copy(cls, tree: Any) -> _HostRuns:
        """A writable host copy of `tree` (device arrays, leaves `[S, ...]`)."""
        leaves, treedef = jax.tree.flatten(tree)
        impls = [jax.random.key_impl(x) if is_key(x) else None for x in leaves]
        return cls(treedef, impls, [np.array(x) for x in to_host(keys_to_data(leaves))])

    def take(self, rows: np.ndarray) -> _HostRuns:
        return _HostRuns(self.treedef, self.impls, [x[rows] for x in self.leaves])

    def write(self, rows: np.ndarray, other: _HostRuns) -> None:
        """Rows `rows` become the first `len(rows)` rows of `other`."""
        for mine, theirs in zip(self.leaves, other.leaves, strict=True):
            mine[rows] = theirs[: len(rows)]

    def to_device(self, sharding: Any) -> Any:
        """The state as device arrays, laid out by `sharding` (None: the default device)."""

        def put(x: np.ndarray, impl: Any) -> Any:
            if sharding is None:
                arr = jnp.asarray(x)
            else:  # every process holds the whole batch and gives its own shards
                arr = jax.make_array_from_callback(x.shape, sharding, lambda i: x[i])
            return arr if impl is None else jax.random.wrap_key_data(arr, impl=impl)

        return jax.tree.unflatten(
            self.treedef, [put(x, i) for x, i in zip(self.leaves, self.impls, strict=True)]
        )


def _blank_row(row: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    return {
        k: np.full(
            (n, *v.shape[1:]), np.nan if np.issubdtype(v.dtype, np.floating) else -1, v.dtype
        )
        for k, v in row.items()
    }


# A step's fixed cost on a device, in runs: a batch of `n` runs per device costs about
# `n + RUN_OVERHEAD` runs' time (DQN on a CPU, `batch_cost` in benchmarks/results/
# sweep.json: 117, 129, 213 and 380 us per step at 1, 2, 4 and 8 runs per device).
RUN_OVERHEAD = 2


def worth_shrinking(
    chunk_seconds: float,
    size: int,
    smaller: int,
    chunk: int,
    num_chunks: int,
    compile_seconds: float,
    devices: int = 1,
) -> bool:
    """Whether a batch of `size` runs (split over `devices`) should shrink to `smaller`
    before chunk `chunk` (of `num_chunks`, counted from 1): the time saved exceeds
    `compile_seconds`. A chunk of `n` runs per device is taken to cost in proportion to
    `n + RUN_OVERHEAD`, so shrinking saves `chunk_seconds * (1 - (smaller/devices +
    RUN_OVERHEAD) / (size/devices + RUN_OVERHEAD))` per chunk, over the chunks the runs
    left are expected to go on: as many again as they have run, at most to the budget's
    end."""
    expected = min(num_chunks - chunk + 1, chunk - 1)
    ratio = (smaller / devices + RUN_OVERHEAD) / (size / devices + RUN_OVERHEAD)
    return chunk_seconds * (1 - ratio) * expected > compile_seconds


def chunk_loop(
    trainer: Trainer,
    state: RunState,
    start: int = 0,
    seconds: float = 0.0,
    devices: Sequence[Any] | None = None,
    compact: bool | str = True,
    min_batch: int = 1,
) -> Iterator[ChunkDone]:
    """Run chunks of a batch of runs (`state`, leaves `[S, ...]`) from chunk `start` until
    the last one, or until every run has met its stopping rule; yield a `ChunkDone` (the
    state of all `S` runs and their metrics row) after each. The caller may stop early by
    leaving the loop; `seconds` is training time already spent (a resumed run).

    Finished runs leave the batch (`compact`, with a stopping rule): before a chunk, the
    runs that have not stopped are gathered into a smaller batch, its size bucketed
    (`bucket`: powers of two, times the device count) so that only a few shapes compile, and
    the batch is computed alone; a stopped run's state and blank rows stay as they were. The
    runs move between batches through the host (`_HostRuns`), so that a shrink compiles
    nothing but the smaller chunk, and every run's state (`ChunkDone.state`) is put together
    only when a caller reads it. A batch then costs about the sum of its runs' steps instead
    of runs x slowest run, and every run's result is the one it has in the uncompacted batch
    (tested). A smaller batch must be compiled: the loop shrinks only when the time it would
    save (`worth_shrinking`: the mean chunk time at this size, scaled by a cost model of the
    batch size, over the chunks the runs left are expected to go on) exceeds what the first
    compilation of a chunk took, and never below `min_batch` runs per device. (With the last
    chunk's time, a cost in proportion to the batch size and every chunk to the budget's
    end, 8 DQN runs on 2 devices shrank 8 -> 4 -> 2 and spent 10 s compiling two batches
    that trained no faster.)
    `compact="always"` shrinks whenever a smaller bucket holds the runs left. Network
    agents: XLA may pick another matrix kernel for another batch size, so a compacted run
    can differ from the uncompacted one in the last bits of a matrix product (and a chaotic
    learner such as DQN then drifts), as a vmapped run can from an unbatched one; tabular
    agents and the tested probe networks are bitwise equal. With `devices`, each batch is
    laid out across them (`S` must be a multiple of their count).
    """
    config = trainer.config
    S = int(np.shape(state.env_steps)[0])
    multiple = len(devices) if devices is not None else 1
    # `batch` computes the runs `index` (its first rows; the rest are padding); `host`
    # holds every run's state on the host, current for the runs not in the batch.
    batch, index, size, host = state, np.arange(S), S, None
    stopped = np.array(to_host(state.stopped))
    chunk_fns: dict[int, Callable] = {}
    stats = {"compile": 0.0}

    def chunk_fn(batch: RunState) -> Callable:
        if size not in chunk_fns:
            sharding = None if devices is None else runs_sharding(size, devices)
            t = time.perf_counter()
            chunk_fns[size] = compile_chunk(trainer, batch, sharding)
            stats["compile"] += time.perf_counter() - t
            # What compiling it took (in the process that first did, for a stored program),
            # though built while `init` ran (prefetched) or loaded from the cache now.
            stats.setdefault("first_compile", chunk_fns[size].compile_seconds)
        return chunk_fns[size]

    def every_run(batch: RunState, index: np.ndarray, host: _HostRuns | None) -> RunState:
        if host is None:  # the batch is every run
            return batch
        host.write(index, _HostRuns.copy(batch))
        return host.to_device(None if devices is None else runs_sharding(S, devices))

    last_return = np.full(S, np.nan)
    t0 = time.perf_counter() - seconds
    size_seconds: list[float] = []  # the chunk times at the current batch size
    for chunk in range(start + 1, config.num_chunks + 1):
        if compact and config.stop_return is not None and size_seconds:
            active = np.flatnonzero(~stopped)
            floor = multiple * (2 if compact == "always" else min_batch)
            smaller = max(bucket(len(active), multiple), floor)
            worth = compact == "always" or worth_shrinking(
                float(np.mean(size_seconds)),
                size,
                smaller,
                chunk,
                config.num_chunks,
                stats["first_compile"],
                multiple,
            )
            if len(active) and smaller < size and worth:
                if host is None:
                    host = _HostRuns.copy(batch)
                else:
                    host.write(index, _HostRuns.copy(batch))
                size, size_seconds, index = smaller, [], active
                take = np.concatenate([active, np.full(size - len(active), active[0])])
                sharding = None if devices is None else runs_sharding(size, devices)
                batch = host.take(take).to_device(sharding)
        fn = chunk_fn(batch)
        t_chunk = time.perf_counter()
        batch, metrics = fn(batch)
        metrics, batch_stopped = to_host((metrics, batch.stopped))  # one transfer per chunk
        brow = host_metrics(metrics)
        size_seconds.append(time.perf_counter() - t_chunk)
        if host is None:
            row = brow
            stopped = np.array(batch_stopped)
        else:
            row = _blank_row(brow, S)
            for k, v in brow.items():
                row[k][index] = v[: len(index)]
            stopped[index] = batch_stopped[: len(index)]
        finished = ~np.isnan(row["episode_return_mean"])
        last_return = np.where(finished, row["episode_return_mean"], last_return)
        progress = Progress(
            chunk=chunk,
            num_chunks=config.num_chunks,
            env_steps=int(np.max(row["env_steps"])),
            total_env_steps=config.total_env_steps,
            seconds=time.perf_counter() - t0 - stats["compile"],
            recent_return=_nanmean(last_return),
            stopped=int(stopped.sum()),
        )
        all_stopped = config.stop_return is not None and bool(stopped.all())
        state_now = functools.partial(every_run, batch, index, host)
        sizes = tuple(chunk_fns)  # in the order first run
        yield ChunkDone(chunk, state_now, row, progress, all_stopped, stats["compile"], sizes)
        if all_stopped:
            return


def eval_keys(keys: Key, eval_key: Key | None = None) -> Key:
    """One evaluation key per run `[S]`: split from `eval_key`, by default a fold of the
    first training key (a clone: `keys` stay unused for training)."""
    if eval_key is None:
        eval_key = jax.random.fold_in(jax.random.clone(keys)[0], 1)
    return jax.random.split(eval_key, len(keys))


def pad_runs(tree: Any, multiple: int) -> Any:
    """Repeat the last run of `tree` (leaves `[S, ...]`) until `S` is a multiple of
    `multiple`; the copies are computed and dropped."""
    S = int(np.shape(jax.tree.leaves(tree)[0])[0])
    extra = (-S) % multiple
    if not extra:
        return tree
    take = np.concatenate([np.arange(S), np.full(extra, S - 1)])
    return jax.tree.map(lambda x: x[take], tree)


def run_batch(
    trainer: Trainer,
    keys: Key,
    hparams: Any,
    on_chunk: Callable[[Progress], None] | None = None,
    eval_key: Key | None = None,
    devices: Sequence[Any] | str | int | None = "auto",
    compact: bool | str = True,
) -> RunResult:
    """Train `S` runs at once: `keys` `[S]`, `hparams` with leaves `[S, ...]`.

    Runs that met the trainer's stopping rule leave the batch (`chunk_loop`); the batch
    stops once every run has. Evaluates each run's greedy policy at the end (`eval_key`
    defaults to a fold of the first key). The runs are split across `devices`
    (`rljax.run.sharding.resolve_devices`: by default every CPU core's device, none on an
    accelerator; `"all"`, a count or a list), padded to a multiple of the device count with
    copies that are dropped from the results; the results are the same.
    """
    S = len(keys)
    devices = resolve_devices(devices, S)
    ekeys = eval_keys(keys, eval_key)  # before `init` consumes the keys
    sharding = None
    if devices is not None:
        keys, hparams, ekeys = (pad_runs(x, len(devices)) for x in (keys, hparams, ekeys))
        keys, hparams = shard_runs(keys, devices), shard_runs(hparams, devices)
        sharding = runs_sharding(len(keys), devices)
        ekeys = jax.device_put(ekeys, sharding)
    evaluate = jitted(trainer, sharding)[2]
    t0 = time.perf_counter()
    state = jax.block_until_ready(init_runs(trainer, keys, hparams, sharding))
    compile_seconds = time.perf_counter() - t0

    rows: list[dict[str, np.ndarray]] = []
    done = None
    for done in chunk_loop(trainer, state, devices=devices, compact=compact):
        rows.append(done.row)
        if on_chunk is not None:
            on_chunk(done.progress)
    state = done.state
    jax.block_until_ready(state)
    eval_returns = np.asarray(evaluate(state.agent, ekeys))[:S]
    metrics = {k: np.stack([r[k] for r in rows], axis=1)[:S] for k in rows[0]}
    state = jax.tree.map(lambda x: x[:S], state)
    return RunResult(
        state,
        metrics,
        eval_returns,
        compile_seconds + done.compile_seconds,
        done.progress.seconds,
        done.batch_sizes,
    )


def _nanmean(x: np.ndarray) -> float:
    return float("nan") if np.isnan(x).all() else float(np.nanmean(x))


def print_progress(stream=None) -> Callable[[Progress], None]:
    """A progress reporter: one rewritten line on a terminal, plain lines (about 20 per
    run) otherwise, e.g. in CI logs."""
    stream = stream or sys.stdout
    tty = stream.isatty()

    def report(p: Progress) -> None:
        every = max(1, p.num_chunks // 20)
        last = p.chunk == p.num_chunks
        if not tty and p.chunk % every and not last:
            return
        rate = p.env_steps / max(p.seconds, 1e-9)
        eta = (p.total_env_steps - p.env_steps) / max(rate, 1e-9)
        line = (
            f"[{p.chunk:>4}/{p.num_chunks}] {p.env_steps:>8,} steps/run  "
            f"return {p.recent_return:7.1f}  {rate:>9,.0f} steps/s/run  "
            f"{p.seconds:6.1f}s  eta {eta:5.0f}s"
        )
        if p.stopped:
            line += f"  stopped {p.stopped}"
        stream.write(("\r" + line) if tty else (line + "\n"))
        if tty and last:
            stream.write("\n")
        stream.flush()

    return report
