"""Traced programs kept on disk beside JAX's compilation cache.

JAX's persistent cache skips XLA's compilation in a new process, but not the tracing and
lowering that come before it, which for DQN's chunk take longer than loading its compiled
code (about 2 of the 2.5 seconds a warm start took). `StoredProgram` keeps each program's
lowered StableHLO (`jax.export`), so that the second process of the same experiment traces
nothing: it reads the program, and JAX's cache gives its compiled code.

A program is found again only by a key that names everything it was traced from: the
experiment (`experiment_fingerprint`: algorithm, configs, environment and its parameters),
the shapes, dtypes and pytree structure of its inputs, the devices it is laid out on, the
JAX settings that change tracing, the versions of jax, jaxlib, flax, optax, gymnax and
numpy, and the source code of rljax and of the environment's classes (a hash of the files).
Edit any of them and the program is traced afresh. The store is off, and programs are
traced as usual, when JAX's compilation cache is off (`RLJAX_NO_COMPILE_CACHE`,
`--no-compile-cache`) or a debugging switch is on (`jax_debug_nans`, `jax_debug_infs`,
`jax_debug_key_reuse`, `jax_disable_jit`, `jax_enable_checks`), since those act while
tracing. Files are written whole or not at all (a temporary file, then a rename), and at
most `MAX_FILES` are kept, the least recently used going first. The output's pytree
structure is stored with `pickle`: the folder is trusted as JAX's own cache beside it is,
which holds compiled machine code.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import inspect
import json
import os
import pickle
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import jax
from jax import export

from rljax.core.keys import threefry_lowering

FOLDER_NAME = "rljax-programs"
SUFFIX = ".jaxprog"
MAX_FILES = 256
# JAX settings read while tracing or lowering: part of every program's key.
TRACE_FLAGS = (
    "jax_enable_x64",
    "jax_default_prng_impl",
    "jax_threefry_partitionable",
    "jax_numpy_rank_promotion",
    "jax_numpy_dtype_promotion",
    "jax_default_matmul_precision",
    "jax_softmax_custom_jvp",
    "jax_use_shardy_partitioner",
)
# Switches that act while tracing or running op by op: no stored program while one is on.
DEBUG_FLAGS = (
    "jax_debug_nans",
    "jax_debug_infs",
    "jax_debug_key_reuse",
    "jax_disable_jit",
    "jax_enable_checks",
)
PACKAGES = ("jax", "jaxlib", "flax", "optax", "gymnax", "numpy")


def store_folder() -> Path | None:
    """Where programs are kept: `rljax-programs/` in JAX's compilation cache folder; None
    (store off) when that cache is off or a debugging switch is on."""
    cache = jax.config.jax_compilation_cache_dir
    if not cache or any(getattr(jax.config, f, False) for f in DEBUG_FLAGS):
        return None
    return Path(cache) / FOLDER_NAME


def _hash_files(paths: set[str]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


@functools.cache
def _code_fingerprint() -> str:
    """rljax's source files and the versions of the packages a program is traced with."""
    root = Path(__file__).resolve().parents[1]
    files = {str(p) for p in root.rglob("*.py")}
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return _hash_files(files) + json.dumps([versions, sys.version], sort_keys=True)


def _class_sources(obj: Any) -> set[str]:
    """The source files of `obj`'s class and its bases (an environment's code)."""
    files = set()
    for cls in type(obj).__mro__:
        try:
            path = inspect.getsourcefile(cls)
        except TypeError:  # builtins
            continue
        if path and os.path.exists(path):
            files.add(path)
    return files


def experiment_fingerprint(
    algo: str, config: Any, train_config: Any, env: Any, env_params: Any
) -> str:
    """A key for every program of one experiment: what it was built from (the environment's
    class, the attributes it was built with and its parameters), and the code."""
    built = repr(sorted(vars(env).items()))  # e.g. GridWorld's stay_action, Pacman's ghosts
    parts = [algo, repr(config), repr(train_config), type(env).__qualname__, built]
    parts.append(repr(env_params))
    parts += [_hash_files(_class_sources(env)), _code_fingerprint()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _describe_sharding(sharding: Any) -> str:
    if sharding is None:
        return "none"
    return repr((sharding.spec, [(d.platform, d.id) for d in sharding.mesh.devices.flat]))


class _Stored(NamedTuple):
    exported: Any  # jax.export.Exported
    out_tree: Any
    blob: bytes  # `exported`, serialized
    seconds: float | None  # what building it first took (tracing, compiling); None: unknown


def _read(path: Path) -> _Stored | None:
    """The program stored in `path`, or None (missing or damaged: a damaged file is
    removed)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        blob, out_tree, seconds = pickle.loads(data)
        exported = export.deserialize(bytearray(blob))
    except Exception:  # any damage means: trace again
        path.unlink(missing_ok=True)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # most recently used
    return _Stored(exported, out_tree, blob, seconds)


def _write(path: Path, blob: bytes, out_tree: Any, seconds: float | None = None) -> None:
    """Write atomically, then keep only the `MAX_FILES` most recently used programs."""
    try:
        data = pickle.dumps((blob, out_tree, seconds))
    except Exception:  # a structure that cannot be kept: traced each time
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        return
    files = sorted(path.parent.glob("*" + SUFFIX), key=_mtime)
    for old in files[: max(0, len(files) - MAX_FILES)]:
        old.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class StoredProgram:
    """`jax.jit(fun, ...)` whose traced program is kept in `store_folder()`.

    Called as `program(*args)` or `program.lower(*args).compile()(*args)`, like a jitted
    function. `key` names `fun` (an experiment's fingerprint and the piece; None: never
    stored); `donate` donates every input; `sharding` lays every input and output out (the
    runs axis). Without a key, or with the store off, it is exactly `jax.jit(fun, ...)`.

    `output_shapes` and `prefetch` let one program be built while another is: the runner
    reads `init`'s outputs' shapes from its stored program (or traces it, once for both)
    and builds the chunk for them on a background thread while `init` compiles and runs.
    XLA compiles and loads compiled code without holding Python's lock, so the two overlap
    on two cores.
    """

    def __init__(
        self,
        fun: Callable,
        key: str | None,
        *,
        donate: bool = False,
        sharding: Any = None,
        compiler_options: dict[str, Any] | None = None,
    ) -> None:
        self._fun, self._key, self._donate, self._sharding = fun, key, donate, sharding
        self._kw: dict[str, Any] = {"compiler_options": compiler_options or {}}
        if sharding is not None:
            self._kw.update(in_shardings=sharding, out_shardings=sharding)
        self._jit = jax.jit(fun, donate_argnums=0 if donate else (), **self._kw)
        self._executables: dict[Any, Callable | Future] = {}
        self._programs: dict[Path, _Stored | None] = {}
        self._flats: dict[str, tuple[Callable, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _stored(self) -> bool:
        return self._key is not None and store_folder() is not None

    def __call__(self, *args: Any) -> Any:
        if not self._stored():
            return self._jit(*args)
        return self._executable(args)(*args)

    def lower(self, *args: Any) -> Any:
        """An object whose `compile()` gives the program for inputs shaped like `args`."""
        if not self._stored():
            return self._jit.lower(*args)
        return _Lowered(lambda: self._executable(args))

    def output_shapes(self, *args: Any) -> Any | None:
        """The shapes and dtypes (`jax.ShapeDtypeStruct`s, in the output's structure, without
        weak types) of the program's outputs for inputs like `args`: read from the stored
        program, else traced only (neither lowered nor stored, so that the runner can start
        on the next program at once; storing it later reuses this trace); None when the
        store is off. Compiles nothing."""
        if not self._stored():
            return None
        specs, in_tree, avals = _describe(args)
        path = self._path(in_tree, avals)
        with self._lock:
            found = self._programs.get(path)
        if found is None:
            found = _read(path)
            if found is not None:  # `_program` finds it here, not on disk again
                with self._lock:
                    self._programs.setdefault(path, found)
        if found is not None:
            shapes = found.exported.out_avals
            tree = found.out_tree
        else:  # traced as `_program` will trace it, which then finds it in JAX's cache
            flat, out = self._flat(in_tree)
            traced = flat.trace(*[jax.ShapeDtypeStruct(x.shape, x.dtype) for x in specs])
            shapes, tree = jax.tree.leaves(traced.out_info), out["tree"]
        # As a stored program's outputs (and so the next program's inputs) are: serialized,
        # they lose their weak types.
        return jax.tree.unflatten(tree, [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in shapes])

    def prefetch(self, *args: Any, after: threading.Event | None = None) -> threading.Event:
        """Start building (reading or tracing, then compiling or loading from JAX's cache)
        the program for inputs shaped like `args` (arrays or `jax.ShapeDtypeStruct`s) on a
        background thread, once `after` is set; a later call with such inputs waits for it.
        Does nothing when the store is off or the program is already built or being built.
        A process that ends meanwhile waits for the build to finish: XLA's compilation
        cannot be interrupted.

        Returns an event set once the program is traced (or read), when only its
        compilation, which does not hold Python's lock, is left: another program's
        tracing that waits for it (`after`) does not slow this one's. (Set at once when
        nothing is prefetched.)"""
        traced = threading.Event()
        if not self._stored():
            traced.set()
            return traced
        specs, in_tree, avals = _describe(args)
        memo = (str(in_tree), avals)
        with self._lock:
            if memo in self._executables:
                traced.set()
                return traced
            path = self._path(in_tree, avals)  # reads this thread's JAX settings
            context = _context()
            self._executables[memo] = _EXECUTOR.submit(
                self._build_in_context, context, path, specs, in_tree, after, traced
            )
        return traced

    def _build_in_context(
        self,
        context: tuple,
        path: Path,
        specs: list,
        in_tree: Any,
        after: threading.Event | None,
        traced: threading.Event,
    ) -> Any:
        """`_build` on the background thread, under the default device of the thread that
        asked for it, once `after` is set; None (the caller builds it) if its other JAX
        settings differ there (a setting changed only for that thread, by a context
        manager)."""
        try:
            if after is not None:
                after.wait()
            flags, device = context
            if _context()[0] != flags:
                return None
            with jax.default_device(device):
                return self._build(path, specs, in_tree, traced)
        finally:
            traced.set()

    def _executable(self, args: tuple) -> Callable:
        specs, in_tree, avals = _describe(args)
        memo = (str(in_tree), avals)
        with self._lock:
            built = self._executables.get(memo)
        if isinstance(built, Future):
            built = built.result()  # raises what building raised
        if built is None:
            built = self._build(self._path(in_tree, avals), specs, in_tree)
        with self._lock:
            self._executables[memo] = built
        return built

    def _path(self, in_tree: Any, avals: tuple) -> Path:
        """Where the program for these inputs is kept: a hash of its whole key."""
        flags = dict(zip(TRACE_FLAGS, _context()[0], strict=True))
        flags["rljax_threefry_lowering"] = threefry_lowering()
        name = json.dumps(
            [self._key, str(in_tree), avals, _describe_sharding(self._sharding), flags]
        )
        folder = store_folder()
        return folder / (hashlib.sha256(name.encode()).hexdigest()[:40] + SUFFIX)

    def _program(self, path: Path, specs: list, in_tree: Any) -> _Stored | None:
        """The exported program and its output structure: read from `path`, or traced and
        written there; None if it cannot be exported (it is then jitted as usual)."""
        with self._lock:
            if path in self._programs:
                return self._programs[path]
        found = _read(path)
        if found is None:
            flat, out = self._flat(in_tree)
            try:
                plain = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in specs]
                blob = bytes(export.export(flat)(*plain).serialize())
            except Exception:  # not exportable (or no flatbuffers): jit as usual
                blob = None
            if blob is not None:
                _write(path, blob, out["tree"])
                # Use what a later process reads: serialized, the outputs lose their weak
                # types, so the next program (the chunk after `init`) gets the same key in
                # every process.
                found = _Stored(export.deserialize(bytearray(blob)), out["tree"], blob, None)
        with self._lock:
            self._programs[path] = found
        return found

    def _flat(self, in_tree: Any) -> tuple[Callable, dict[str, Any]]:
        """`fun` jitted on its inputs' leaves (structure `in_tree`), returning its outputs'
        leaves, and a dict whose "tree" is their structure once it is traced: one per
        structure, so that JAX traces it once for `output_shapes` and `_program` both."""
        with self._lock:
            if str(in_tree) not in self._flats:
                out: dict[str, Any] = {}

                def flat(*flat_args):
                    result = self._fun(*jax.tree.unflatten(in_tree, flat_args))
                    flat_out, out["tree"] = jax.tree.flatten(result)
                    return flat_out

                self._flats[str(in_tree)] = (jax.jit(flat, **self._kw), out)
            return self._flats[str(in_tree)]

    def _build(
        self, path: Path, specs: list, in_tree: Any, traced: threading.Event | None = None
    ) -> Callable:
        """The compiled program (read or traced, then compiled or loaded from JAX's cache).
        Its `build_seconds` is what that took now, and its `compile_seconds` what it took
        the first time, when it was traced and compiled (kept in the stored program): what
        another shape of it would cost."""
        start = time.perf_counter()
        found = self._program(path, specs, in_tree)
        if traced is not None:
            traced.set()
        if found is None:
            return lambda *a: self._jit(*a)
        donate = tuple(range(len(specs))) if self._donate else ()
        call = jax.jit(found.exported.call, donate_argnums=donate, **self._kw)
        compiled = call.lower(*specs).compile()
        took = time.perf_counter() - start
        if found.seconds is None:  # built here first: remember what it took
            _write(path, found.blob, found.out_tree, took)
            found = found._replace(seconds=took)
            with self._lock:
                self._programs[path] = found

        def run(*args: Any) -> Any:
            return jax.tree.unflatten(found.out_tree, compiled(*jax.tree.leaves(args)))

        run.build_seconds, run.compile_seconds = took, found.seconds
        return run


# Two background threads: the runner prefetches the chunk, and the greedy stopping rule's
# evaluation beside it.
_EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rljax-programs")


def _describe(args: tuple) -> tuple[list, Any, tuple]:
    """`args`' leaves as `jax.ShapeDtypeStruct`s (with an array's layout on the devices, so
    that the program is compiled for them), their structure, and the key of their shapes
    and dtypes (with weak types, which select another program)."""
    leaves, in_tree = jax.tree.flatten(args)
    specs = [
        jax.ShapeDtypeStruct(
            x.shape,
            x.dtype,
            weak_type=getattr(x, "weak_type", False),
            sharding=getattr(x, "sharding", None),
        )
        for x in leaves
    ]
    avals = tuple(
        (tuple(x.shape), str(x.dtype), bool(getattr(x, "weak_type", False))) for x in leaves
    )
    return specs, in_tree, avals


def _context() -> tuple[tuple[str, ...], Any]:
    """This thread's JAX settings that tracing reads (`TRACE_FLAGS`), and its default
    device: context managers change them for one thread only."""
    flags = tuple(str(getattr(jax.config, f, None)) for f in TRACE_FLAGS)
    return flags, jax.config.jax_default_device


class _Lowered:
    def __init__(self, build: Callable[[], Callable]) -> None:
        self._build = build

    def compile(self) -> Callable:
        return self._build()
