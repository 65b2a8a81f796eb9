"""Which runtime runs the detector, and the model it loads: a .pt is converted once (ultralytics' export,
offline) to the fastest runtime that works on the device and kept in `detector.cache_dir`; every other format
runs on its own runtime."""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from daemon.config.models import BatchConfig, DetectorConfig
from plugins.interfaces import PluginError

log = logging.getLogger(__name__)

# What `auto` tries for a .pt, fastest first; torch loads the .pt itself, so it always works.
AUTO_ORDER = {"cpu": ("openvino", "onnxruntime", "torch"), "cuda": ("tensorrt", "torch")}
# The devices each runtime can run on (ultralytics' OpenVINO backend runs on the CPU here).
RUNTIME_DEVICES = {"torch": ("cpu", "cuda", "mps"), "openvino": ("cpu",), "onnxruntime": ("cpu",),
                   "tensorrt": ("cuda",)}
# The Python packages a conversion needs; the first one's version goes into the cache key.
RUNTIME_PACKAGES = {"openvino": ("openvino",), "onnxruntime": ("onnxruntime", "onnx"), "tensorrt": ("tensorrt",)}
# ultralytics' export format, and how its output (and so a cache entry) is named.
EXPORT_FORMATS = {"openvino": "openvino", "onnxruntime": "onnx", "tensorrt": "engine"}
ENTRY_SUFFIXES = {"openvino": "_openvino_model", "onnxruntime": ".onnx", "tensorrt": ".engine"}
MAX_CAUSE_CHARS = 200
# A cache entry no start has used for this long is deleted when another conversion runs (weights replaced
# long ago, an old runtime version): the cache cannot grow without bound as models and versions change.
UNUSED_ENTRY_S = 30 * 86400
WORK_PREFIX = ".converting-"  # a conversion's private folder; it holds LOCK_NAME locked while it runs
LOCK_NAME = ".lock"


@dataclass(frozen=True, slots=True)
class ModelChoice:
    runtime: str  # torch, onnxruntime, openvino, tensorrt or triton; "ultralytics" for other formats it loads
    path: str  # what ultralytics loads: the configured model, or its converted cache entry


class RuntimeUnavailableError(Exception):
    """This runtime cannot run the model here; the message is the cause, on one line."""


def choose_model(config: DetectorConfig, source: str, device: str, half: bool) -> ModelChoice:
    """The runtime for ``source`` (a checked local path or a Triton URL) on ``device`` and the model path
    it loads. PluginError when `detector.runtime` names one that cannot be used."""
    own = format_runtime(source)
    if own is not None:
        if config.runtime not in ("auto", own):
            raise PluginError(f"detector.runtime: {config.runtime} cannot run {Path(source).name} (its format "
                              f"runs on {own}); set runtime: auto, or point detector.model at the .pt")
        return ModelChoice(own, source)
    device_kind = device.partition(":")[0]
    candidates = (config.runtime,) if config.runtime != "auto" else AUTO_ORDER.get(device_kind, ("torch",))
    for index, runtime in enumerate(candidates):
        try:
            return ModelChoice(runtime, prepare(runtime, config, Path(source), device, half))
        except RuntimeUnavailableError as cause:
            if config.runtime != "auto":
                raise PluginError(f"detector.runtime: {runtime} cannot be used: {cause}") from None
            log.warning("detector: %s unavailable (%s); trying %s", runtime, cause, candidates[index + 1])
    raise AssertionError("unreachable: torch, last in every auto order, always loads a .pt")


def format_runtime(source: str) -> str | None:
    """The runtime a model file's own format needs; None for a .pt (any runtime, after conversion)."""
    if urlsplit(source).scheme in ("http", "https", "grpc"):
        return "triton"
    path = Path(source)
    if path.suffix == ".pt":
        return None
    if path.suffix == ".onnx":
        return "onnxruntime"
    if path.suffix == ".engine":
        return "tensorrt"
    if path.is_dir() and (path.name.endswith("_openvino_model") or any(path.glob("*.xml"))):
        return "openvino"
    return "ultralytics"  # whatever else ultralytics recognises (or refuses, with its own error)


def prepare(runtime: str, config: DetectorConfig, model: Path, device: str, half: bool) -> str:
    """The path that runs ``model`` (a .pt) on ``runtime``: the .pt itself for torch, else its cache entry,
    converted now if missing. RuntimeUnavailableError when the device, a package or the conversion fails."""
    if device.partition(":")[0] not in RUNTIME_DEVICES[runtime]:
        raise RuntimeUnavailableError(f"it runs on {' or '.join(RUNTIME_DEVICES[runtime])}, not {device}")
    if runtime == "torch":
        return str(model)
    version = runtime_version(runtime)
    # A TensorRT engine is built for a largest batch; the others take any batch (dynamic shapes).
    batch = (config.max_batch or BatchConfig().max_batch) if runtime == "tensorrt" else "dynamic"
    key = {"weights_sha256": file_sha256(model), "imgsz": config.imgsz, "precision": "fp16" if half else "fp32",
           "batch": batch, "runtime": runtime, "runtime_version": version, "ultralytics": ultralytics_version()}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    entry = Path(config.cache_path) / f"{model.stem}-{runtime}-{digest}{ENTRY_SUFFIXES[runtime]}"
    if not entry.exists():
        prune_cache(entry.parent)
        try:
            convert(model, runtime, entry, export_options(runtime, config.imgsz, half, batch, device))
        except Exception as error:  # ultralytics' export and the runtimes' converters raise many types
            raise RuntimeUnavailableError(f"conversion failed: {one_line(error)}") from None
    os.utime(entry)  # its last use, which prune_cache reads
    return str(entry)


def prune_cache(cache: Path) -> None:
    """Delete what no daemon needs: the folders of conversions whose process died (their lock is free) and
    entries unused for UNUSED_ENTRY_S. Each deletion is logged; one that fails is left for the next time."""
    if not cache.is_dir():
        return
    now = time.time()
    for path in cache.iterdir():
        if path.name.startswith(WORK_PREFIX):
            if not _abandoned(path):
                continue  # another daemon is converting into it now
            reason = "left by a conversion that did not finish"
        elif not path.name.startswith(".") and now - path.stat().st_mtime > UNUSED_ENTRY_S:
            reason = f"unused for {(now - path.stat().st_mtime) / 86400:.0f} days"
        else:
            continue
        try:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        except OSError as error:
            log.warning("detector: cannot delete %s from the model cache: %s", path.name, one_line(error))
            continue
        log.info("detector: deleted %s from the model cache (%s)", path.name, reason)


def _abandoned(work: Path) -> bool:
    """No process converts into ``work``: nobody holds its lock, or it has none and is older than a minute (a
    conversion creates the folder, then its lock, so a young folder without one is being started)."""
    try:
        with open(work / LOCK_NAME, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except FileNotFoundError:
        return time.time() - work.stat().st_mtime > 60
    except OSError:  # held: EWOULDBLOCK
        return False
    return True


def runtime_version(runtime: str) -> str:
    """The runtime package's version, after checking that every package the conversion needs imports."""
    versions = []
    for package in RUNTIME_PACKAGES[runtime]:
        try:
            versions.append(str(importlib.import_module(package).__version__))
        except (ImportError, OSError) as error:  # OSError: the package's native library does not load
            raise RuntimeUnavailableError(f"the Python package {package!r} does not import: "
                                          f"{one_line(error)}") from None
    return versions[0]


def ultralytics_version() -> str:
    import ultralytics

    return str(ultralytics.__version__)


def export_options(runtime: str, imgsz: int, half: bool, batch: int | str, device: str) -> dict[str, object]:
    """ultralytics' export arguments. dynamic=True keeps rectangular letterboxing (and any batch) working."""
    options: dict[str, object] = {"format": EXPORT_FORMATS[runtime], "imgsz": imgsz, "dynamic": True,
                                  "quantize": 16 if half else None, "device": device}
    if runtime in ("onnxruntime", "tensorrt"):
        options["simplify"] = False  # onnxslim is not a dependency; ultralytics would try to install it
    if runtime == "tensorrt":
        options["batch"] = batch  # the engine's largest batch (its optimisation profile's shape)
    return options


def convert(model: Path, runtime: str, entry: Path, options: dict[str, object]) -> None:
    """Export ``model`` into the cache ``entry``. ultralytics writes its export beside the .pt, so the .pt is
    linked into a private directory of the cache and the finished export renamed into place in one step:
    another daemon converting the same model at once never sees a partial entry, and whichever renames
    first wins (the other's export is deleted)."""
    from ultralytics import YOLO

    entry.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log.info("detector: converting %s for %s (once; kept in %s)", model.name, runtime, entry.parent)
    with tempfile.TemporaryDirectory(prefix=WORK_PREFIX, dir=entry.parent) as work, \
            open(Path(work) / LOCK_NAME, "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when this process ends, however it ends
        copy = Path(work) / model.name
        try:
            os.link(model, copy)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(model, copy)
        with warnings.catch_warnings():  # torch's deprecations of the tracing export uses: not the user's concern
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            output = Path(YOLO(str(copy), task="detect").export(**options))
        try:  # neither replaces an entry already there: a directory's rename fails, and so does a link
            if output.is_dir():
                os.rename(output, entry)
            else:
                os.link(output, entry)
        except OSError:
            if not entry.exists():
                raise
            log.info("detector: another process converted %s first; using its %s", model.name, entry.name)
            return
    log.info("detector: converted %s for %s in %.1f s: %s", model.name, runtime, time.monotonic() - started, entry)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= MAX_CAUSE_CHARS else text[:MAX_CAUSE_CHARS] + " ..."


def default_threads(runtime: str) -> int:
    """The CPU threads a runtime gets when `detector.threads` is unset (docs/performance.md): OpenVINO's pool
    copes with the cameras' decoding threads on the same cores, so it gets every core; ONNX Runtime's and
    PyTorch's spinning pools stall on a descheduled thread, so they leave one core to the decoding."""
    cores = len(os.sched_getaffinity(0))
    return cores if runtime == "openvino" else max(1, cores - 1)
