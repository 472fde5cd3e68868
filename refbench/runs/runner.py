"""``refbench run``: an adapter over a dataset card, into a resumable store, then scored or exported.

The path of one run (:func:`run`): open the card's loader; build the adapter from its card and
``--model-arg`` overrides and call its ``setup``; fix the run directory (default
``runs/<dataset>/<model>-<fingerprint>``); shard the samples by video when under torchrun; skip the samples
already in the store (any rank's part); feed the rest to the adapter in batches, prefetching the next batch's
frames; store each batch in one transaction; then, on rank 0, merge the parts into the prediction file the
evaluator reads (``predictions.json``: RLE masks, spans or RES RLE), score it with :func:`refbench.evaluate.run.
evaluate` when the ground truth is public (``summary.json``, ``per_sample.csv``, a leaderboard row per metric),
or write the submission zip when it is not. ``run.json`` records the configuration and provenance.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from refbench import __version__
from refbench.errors import RefbenchInputError
from refbench.adapters.base import Adapter, Frames, GroundingRequest, ImageRequest, RunContext, VideoRequest
from refbench.runs import dist as D
from refbench.runs.store import HeaderMismatch, RunStore, Stored, StoreError, StoreMismatch, part_path, part_paths

Progress = Callable[[int, int], None]

DEFAULT_DATASET = "demo_mevis_val_u"
DEFAULT_MODEL = "prior"
# predict_payloads as the base class defines it: adapters that keep it get their encoding overlapped (_predict)
_BASE_PREDICT_PAYLOADS = Adapter.predict_payloads


class RunError(RefbenchInputError, RuntimeError):
    """A run cannot start or did not finish (the message says why and where)."""


@dataclass
class RunConfig:
    """Everything that defines a run (the CLI fills it from its options)."""

    model: str = DEFAULT_MODEL
    dataset: str = DEFAULT_DATASET
    root: str | None = None
    out: str | None = None
    limit: int | float | None = None  # N: the first N samples; 0 < x < 1: the first ceil(x * all) (limit_count)
    device: str = "cpu"
    model_args: dict[str, Any] = field(default_factory=dict)
    protocol: str | None = None
    leaderboard: str | None = None  # directory for reproduced rows; None = no append
    overwrite: bool = False
    prefetch: int = 2  # batches of frames decoded ahead (adapters that need pixels)
    runs_dir: str = "runs"  # parent of the default run directory <runs_dir>/<dataset>/<model>-<fingerprint>
    batch_size: int | None = None  # requests per adapter call and store transaction (None: the adapter's own)
    seed: int | None = 0  # seeds random, NumPy and torch before the adapter is built (refbench.runs.seeding)
    per_frame: bool = False  # also write <run_dir>/per_frame.csv (video tasks; refbench.evaluate.per_frame)
    protocol_args: dict[str, Any] = field(default_factory=dict)  # --protocol-arg (scoring only; no leaderboard rows)


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any] | None  # evaluation summary (None when GT is not public or on ranks > 0)
    submission: Path | None
    predicted: int  # samples predicted by this process in this invocation
    reused: int  # samples found in the store
    total: int  # samples in the run (after --limit)
    table: str | None = None
    leaderboard_rows: int = 0
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# Samples -> requests
# ----------------------------------------------------------------------------------------------


def sample_key(task: str, sample: Any) -> str:
    if task == "refvos":
        return f"{sample.video}/{sample.exp_id}"
    if task == "vos":  # one request per video (refbench.runs.vos)
        return str(sample.video)
    if task == "tsg":
        return str(sample.qid)
    return str(sample.sample_id)


def limit_count(limit: int | float, n: int) -> int:
    """How many samples ``--limit`` keeps of ``n``: a whole number N >= 1 keeps the first N; a fraction
    0 < x < 1 the first ``ceil(x * n)`` (at least one), as lmms-eval reads a fractional ``--limit``. The first
    ones, in the dataset's order, rather than a spread: an integer and a fractional limit mean the same, and a
    larger limit later reuses every stored prediction of a smaller one."""
    import math

    if isinstance(limit, bool) or not isinstance(limit, (int, float)):
        raise RunError(f"--limit {limit!r}: expected a number of samples or a fraction between 0 and 1")
    if isinstance(limit, float) and not limit.is_integer():
        if not 0 < limit < 1:
            raise RunError(f"--limit {limit}: a fraction must lie between 0 and 1 (or give a whole number)")
        return min(n, max(1, math.ceil(limit * n)))
    if limit < 1:
        raise RunError(f"--limit must be >= 1, got {limit}")
    return min(n, int(limit))


def _video_of(task: str, sample: Any) -> str:
    return sample.image_id if task == "res" else sample.video


def _cost(task: str, sample: Any) -> float:
    return float(len(sample.frames)) if task in ("refvos", "vos") else 1.0


def frame_size(loader: Any, sample: Any, paths: Sequence[Path]) -> tuple[int, int]:
    """The original (H, W) of a video sample: the meta, the first frame's header, else the ground truth."""
    if sample.height and sample.width:
        return int(sample.height), int(sample.width)
    if paths and Path(paths[0]).is_file():
        from refbench.data.mevis import image_size

        return image_size(Path(paths[0]))
    if callable(getattr(loader, "frame_size", None)):  # Ref-DAVIS17: the annotation PNG's header
        return tuple(loader.frame_size(sample.video))  # type: ignore[return-value]
    if callable(getattr(loader, "_frame_size", None)) and getattr(loader, "mask_dict_path", None) is not None:
        return tuple(loader._frame_size(sample))  # type: ignore[return-value]
    if getattr(loader, "has_gt", False):
        return tuple(loader.gt_masks(sample).shape[1:])  # type: ignore[return-value]
    raise RunError(f"{sample.video}: cannot tell the frame size: {paths[0] if paths else 'no frames'} is missing "
                   "and the ground truth is not public (put JPEGImages on disk)")


class _Requests:
    def __init__(self, task: str, loader: Any, adapter: Adapter, protocol: str) -> None:
        self.task, self.loader, self.adapter, self.protocol = task, loader, adapter, protocol
        self.oracle = bool(getattr(adapter, "uses_ground_truth", False))

    def make(self, sample: Any) -> Any:
        key = sample_key(self.task, sample)
        loader = self.loader
        if self.task == "refvos":
            paths = loader.frame_paths(sample)
            ref = (lambda s=sample: loader.gt_masks(s)) if self.oracle else None
            return VideoRequest(key, sample.video, sample.exp_id, sample.text, Frames(sample.frames, paths),
                                frame_size(loader, sample, paths), reference=ref)
        if self.task == "vos":  # prompts from the benchmark's protocol: the only ground truth the adapter sees
            from refbench.runs.vos import vos_request

            return vos_request(loader, sample, key)
        if self.task == "tsg":
            vp = loader.video_path(sample) if callable(getattr(loader, "video_path", None)) else None
            return GroundingRequest(key, sample.video, sample.query, sample.duration, vp,
                                    reference=tuple(sample.span) if (self.oracle and sample.span) else None)
        from refbench.evaluate.res import _gt

        ref = (lambda s=sample: _gt(loader, s, self.protocol)) if self.oracle else None
        return ImageRequest(key, sample.image_id, sample.text, loader.image_path(sample),
                            (int(sample.height), int(sample.width)), reference=ref)



class SubsetLoader:
    """A loader restricted to some samples (``--limit``); everything else is delegated."""

    def __init__(self, loader: Any, keys: set[str], task: str) -> None:
        self._loader, self._keys, self._task = loader, keys, task

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._loader, name)
        if name == "pooled_samples":  # Ref-DAVIS17 convention B's order, restricted the same way
            return lambda: [s for s in attr() if sample_key(self._task, s) in self._keys]
        return attr

    def samples(self) -> list[Any]:
        return [s for s in self._loader.samples() if sample_key(self._task, s) in self._keys]


# ----------------------------------------------------------------------------------------------
# Provenance
# ----------------------------------------------------------------------------------------------


def _git_commit() -> dict[str, Any] | None:
    repo = Path(__file__).resolve().parents[2]
    if not (repo / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
        return {"commit": head, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return None


def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "numpy", "pycocotools", "opencv-python-headless", "opencv-python", "pillow",
                "transformers", "accelerate"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _device_name(device: str) -> str:
    if device.startswith("cuda") and "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()


def _peak_memory() -> dict[str, float]:
    import resource

    out = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


# ----------------------------------------------------------------------------------------------
# Writing the merged predictions
# ----------------------------------------------------------------------------------------------


def _atomic_json(path: Path, doc: Any, indent: int | None = None) -> None:
    from refbench.files import atomic_output

    with atomic_output(path, "w", "--out") as fh:
        json.dump(doc, fh, indent=indent, separators=(",", ": ") if indent else (",", ":"), default=str)


class MergedParts(Mapping[str, Stored]):
    """The stored predictions of a run's samples across its part files, read from SQLite when asked for:
    only the sample ids are held, so merging a 10,000-expression run costs no more memory than a small one."""

    def __init__(self, run_dir: Path, header: dict[str, Any], keys: Sequence[str]) -> None:
        self._stores = [RunStore(p, header, readonly=True) for p in part_paths(run_dir)]
        where: dict[str, int] = {}
        for i, store in enumerate(self._stores):
            for sid in store.done():
                j = where.setdefault(sid, i)
                if j != i and self._stores[j].get(sid).payload != store.get(sid).payload:  # type: ignore[union-attr]
                    msg = (f"{run_dir}: sample {sid} is stored twice with different predictions ({store.path.name} "
                           f"and {self._stores[j].path.name})")
                    self.close()
                    raise RunError(msg)
        absent = [k for k in keys if k not in where]
        if absent:
            self.close()
            raise RunError(f"{run_dir}: {len(absent)} sample(s) have no stored prediction, e.g. {', '.join(absent[:5])}")
        self._where = {k: where[k] for k in keys}

    def __getitem__(self, key: str) -> Stored:
        item = self._stores[self._where[key]].get(key)
        if item is None:  # pragma: no cover - the part lost a row it listed
            raise KeyError(key)
        return item

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def close(self) -> None:
        for store in self._stores:
            store.close()
        self._stores = []

    def __del__(self) -> None:
        try:
            for store in self._stores:
                store.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def merge_parts(run_dir: Path, header: dict[str, Any], keys: Sequence[str]) -> Mapping[str, Stored]:
    """Every stored prediction of ``keys`` across the run's part files, as a mapping that reads each from its
    part when asked for (:class:`MergedParts`); RunError names what is missing or stored twice differently."""
    return MergedParts(run_dir, header, keys)


def write_predictions(task: str, samples: Sequence[Any], stored: Mapping[str, Stored], path: Path) -> None:
    """The merged predictions in the format ``refbench eval`` reads, in dataset order, written one sample at
    a time (the same bytes as one ``json.dump`` of the whole document) through
    :func:`refbench.files.atomic_output` (the target is replaced only when complete)."""
    from refbench.files import atomic_output

    dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode
    with atomic_output(path, "w", "--out") as fh:
        fh.write("{")
        if task == "refvos":
            by_video: dict[str, list[Any]] = {}
            for s in samples:
                by_video.setdefault(s.video, []).append(s)
            for vi, (video, exps) in enumerate(by_video.items()):  # sample ids are unique: no exp_id repeats
                fh.write(("," if vi else "") + dumps(video) + ":{")
                for ei, s in enumerate(exps):
                    p = stored[sample_key(task, s)].payload
                    h, w = p["size"]
                    rles = [{"size": [h, w], "counts": c} for c in p["rles"]]
                    fh.write(("," if ei else "") + dumps(s.exp_id) + ":" + dumps(rles))
                fh.write("}")
        elif task == "vos":
            from refbench.runs.vos import vos_predictions_doc

            for i, s in enumerate(samples):  # one video at a time (refbench.runs.vos's document, streamed)
                fh.write(("," if i else "") + dumps(s.video) + ":" + dumps(vos_predictions_doc([s], stored)[s.video]))
        else:
            for i, s in enumerate(samples):
                key = sample_key(task, s)
                value = stored[key].payload["spans"] if task == "tsg" else stored[key].payload
                fh.write(("," if i else "") + dumps(key) + ":" + dumps(value))
        fh.write("}")


def write_diagnostics(samples: Sequence[Any], task: str, stored: Mapping[str, Stored], path: Path) -> None:
    from refbench.files import atomic_output

    with atomic_output(path, "w", "--out") as fh:
        for s in samples:
            item = stored[sample_key(task, s)]
            fh.write(json.dumps({"sample_id": item.sample_id, "seconds": item.seconds,
                                 "diagnostics": item.diagnostics}, default=str) + "\n")


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------

def default_run_dir(dataset: str, model: str, fingerprint: str, runs_dir: str | os.PathLike = "runs") -> Path:
    """``<runs_dir>/<dataset>/<model>-<fingerprint[:8]>``: the one name of a run, for ``refbench run`` and
    ``refbench demo`` alike."""
    return Path(runs_dir) / dataset / f"{model}-{fingerprint[:8]}"


def _check_run_dir(run_dir: Path, header: dict[str, Any], overwrite: bool) -> None:
    """Refuse, before anything is written: an ``--out`` that is a file or lies below one, and (unless
    ``--overwrite``) part files that are corrupt or hold predictions made under another header. Read-only:
    the parts are opened immutable, so not even SQLite's ``-wal`` / ``-shm`` files appear."""
    for parent in (run_dir, *run_dir.parents):
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                where = "is" if parent == run_dir else f"lies below {parent}, which is"
                raise RunError(f"{run_dir}: the run directory {where} not a folder; choose another --out")
            break
    if overwrite or not run_dir.is_dir():
        return
    for p in part_paths(run_dir):
        try:
            RunStore(p, header, immutable=True).close()
        except HeaderMismatch:
            raise
        except StoreError:
            # an immutable read may catch a concurrent writer's checkpoint half done: ask again with locking
            RunStore(p, header, readonly=True).close()


def _make_run_dir(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"{run_dir}: cannot create the run directory ({exc.strerror or exc}); choose another "
                       "--out") from exc


def _clear(run_dir: Path) -> None:
    """``--overwrite``: drop the stored predictions. A finished run's record (predictions.json, summary.json,
    per_sample.csv, submission.zip) stays until the new run has finished and replaces it, so a rerun that
    fails leaves the last finished record as it was."""
    for p in part_paths(run_dir):
        for extra in (p, p.with_name(p.name + "-wal"), p.with_name(p.name + "-shm")):
            if extra.exists():
                extra.unlink()


def run(config: RunConfig, progress: Progress | None = None, log: Callable[[str], None] | None = None) -> RunResult:
    """Run ``config.model`` over ``config.dataset`` (module doc). Library code: raises, never exits."""
    from refbench.adapters.registry import load_adapter
    from refbench.cards import dataset_card
    from refbench.evaluate.run import annotation_files, annotation_hash

    t0 = time.time()
    say = log or (lambda _msg: None)
    d = D.from_env()
    card = dataset_card(config.dataset)
    task = card.task
    if task not in ("refvos", "tsg", "res", "vos"):
        raise RunError(f"dataset {card.name}: task {task!r} has no adapter contract yet (refvos, tsg, res, vos)")
    root = card.resolve_root(config.root)
    loader = card.open(root)
    protocol = config.protocol or card.protocol

    if config.seed is not None:
        from refbench.runs.seeding import seed_everything

        seed_everything(config.seed)
    adapter, acard = load_adapter(config.model, config.model_args)
    if task not in acard.tasks or (adapter.tasks and task not in adapter.tasks):
        raise RunError(f"model {acard.name} does not support task {task!r} of {card.name} "
                       f"(it supports {', '.join(acard.tasks)})")
    if adapter.uses_ground_truth and not card.has_public_gt:
        raise RunError(f"model {acard.name} needs ground truth, which {card.name} does not make public")

    samples = list(loader.samples())
    if not samples:
        raise RunError(f"dataset {card.name} at {root}: no samples")
    if config.limit is not None:
        samples = samples[: limit_count(config.limit, len(samples))]
    keys = [sample_key(task, s) for s in samples]
    if len(set(keys)) != len(keys):
        raise RunError(f"dataset {card.name}: duplicate sample ids; cannot store predictions by id")

    D.init(d, config.device)
    device = D.device_for(d, config.device)
    adapter.setup(RunContext(device=device, dataset=card.name, root=root,
                             run_dir=Path(config.out) if config.out else None, seed=config.seed))
    fingerprint = adapter.fingerprint()
    ann_files = annotation_files(card, root)
    header = {"adapter": acard.name, "fingerprint": fingerprint, "dataset": card.name, "task": task,
              "annotation_sha256": annotation_hash(ann_files, root)}
    run_dir = Path(config.out) if config.out else default_run_dir(card.name, acard.name, fingerprint,
                                                                  config.runs_dir)

    # Everything that can refuse the run (adapter, fingerprint, the parts' headers, corrupt parts, an --out that
    # cannot be a folder) is checked before anything in the run directory changes: a refused run leaves an
    # existing run exactly as it was (its run.json included).
    _check_run_dir(run_dir, header, config.overwrite)
    if d.is_main:
        _make_run_dir(run_dir)
        if config.overwrite:
            _clear(run_dir)
        for stale in D.aborted(run_dir):
            stale.unlink()
    D.barrier(d)
    # Each rank creates (or reopens) its own part first; after the barrier every part is complete, and their
    # union (all must carry the same header) is what is already done, whatever world size made them.
    store = RunStore(part_path(run_dir, d.rank), header)
    D.barrier(d)
    try:
        done: set[str] = store.done()
        for p in part_paths(run_dir):
            if p == part_path(run_dir, d.rank):
                continue
            s = RunStore(p, header, readonly=True)
            try:
                done |= s.done()
            finally:
                s.close()
    except BaseException:
        store.close()
        raise
    if d.is_main:  # accepted: only now is run.json (re)written
        _write_run_json(run_dir, config, acard, adapter, header, d, status="running", started=t0)

    shards = D.shard_by_video(samples, lambda s: _video_of(task, s), lambda s: _cost(task, s), d.world)
    mine = [samples[i] for i in shards[d.rank]]
    todo = [s for s in mine if sample_key(task, s) not in done]
    reused = len(mine) - len(todo)
    if d.is_main:
        say(f"run dir {run_dir}: {len(samples)} samples" + (f" over {d.world} ranks" if d.distributed else "")
            + (f", {reused} already stored" if reused else ""))

    ok, message = True, ""
    predicted = 0
    try:
        predicted = _predict(task, loader, adapter, protocol, todo, store, run_dir, d, config, progress,
                             len(mine), reused)
    except Exception as exc:  # noqa: BLE001 - reported to every rank, then re-raised
        ok, message = False, f"rank {d.rank}: {exc}"
        if d.distributed:
            D.abort_path(run_dir, d.rank).write_text(message + "\n" + traceback.format_exc())
            print(f"refbench run: {message}", file=sys.stderr)
        failure = exc
    finally:
        store.close()
        adapter.close()
    statuses = D.gather_status(d, ok, message)
    failed = [m for _r, good, m in statuses if not good]
    if failed:
        D.shutdown(d)
        if not ok:
            raise failure  # this rank's own error, with its traceback
        raise RunError("; ".join(failed))
    D.barrier(d)

    result = RunResult(run_dir=run_dir, summary=None, submission=None, predicted=predicted, reused=reused,
                       total=len(samples))
    if d.is_main:
        _finish(result, task, card, acard, adapter, samples, keys, header, root, loader, protocol, config, d, t0,
                say)
    D.barrier(d)
    D.shutdown(d)
    return result


def _predict(task: str, loader: Any, adapter: Adapter, protocol: str, todo: list[Any], store: RunStore,
             run_dir: Path, d: D.Dist, config: RunConfig, progress: Progress | None, n_mine: int,
             reused: int) -> int:
    reqs = _Requests(task, loader, adapter, protocol)
    bs = config.batch_size or max(1, int(getattr(adapter, "batch_size", 1) or 1))
    batches = [todo[i:i + bs] for i in range(0, len(todo), bs)]
    pixels = task in ("refvos", "vos") and bool(getattr(adapter, "needs_pixels", True))
    if progress and d.is_main:
        progress(reused, n_mine)
    pool = ThreadPoolExecutor(max_workers=2) if pixels else None
    # An adapter that keeps the base predict_payloads has its masks checked and RLE-encoded on a thread while
    # it predicts the next batch (numpy releases the GIL in the encoder's array passes, a GPU model in its
    # kernels); batches are still stored one transaction each, in order. A worker proxy (payloads already
    # encoded) or an adapter with its own predict_payloads is called as before.
    overlap = type(adapter).predict_payloads is _BASE_PREDICT_PAYLOADS and task != "tsg"
    encoder = ThreadPoolExecutor(max_workers=1) if overlap else None
    ahead: list[tuple[list[Any], Future | None]] = []
    pending: list[tuple[list[Any], Future, float]] = []
    done = reused

    def submit(batch: list[Any]) -> tuple[list[Any], Future | None]:
        rs = [reqs.make(s) for s in batch]
        fut = pool.submit(lambda: [r.frames.preload() for r in rs]) if pool is not None else None
        return rs, fut

    def store_batch(rs: list[Any], encoded: list[Any], secs: float) -> None:
        nonlocal done
        items = []
        for r, (payload, diag) in zip(rs, encoded):
            items.append(Stored(r.sample_id, r.image_id if task == "res" else r.video, payload, diag, secs))
            if task in ("refvos", "vos"):
                r.frames.release()
        store.put_many(items)
        done += len(rs)
        if progress and d.is_main:
            progress(done, n_mine)

    def store_pending() -> None:
        while pending:
            rs, fut, secs = pending.pop(0)
            store_batch(rs, fut.result(), secs)  # an encoding error of that batch surfaces here

    try:
        nxt = 0
        for _ in range(len(batches)):
            while len(ahead) <= max(0, config.prefetch if pixels else 0) and nxt < len(batches):
                ahead.append(submit(batches[nxt]))
                nxt += 1
            rs, fut = ahead.pop(0)
            if D.aborted(run_dir):
                raise RunError(f"stopped: another rank failed ({', '.join(p.name for p in D.aborted(run_dir))})")
            if fut is not None:
                fut.result()  # surfaces a decode error of this batch
            t = time.perf_counter()
            if encoder is None:
                encoded = adapter.predict_payloads(task, rs)
                store_batch(rs, encoded, (time.perf_counter() - t) / len(rs))
                continue
            preds = adapter.predictions(task, rs)
            secs = (time.perf_counter() - t) / len(rs)
            if task in ("refvos", "vos"):  # the check and the encoder need the frame names only, not pixels
                for r in rs:
                    r.frames.release()
            store_pending()  # the previous batch, encoded while this one was predicted
            pending.append((rs, encoder.submit(adapter.encode_payloads, task, rs, preds), secs))
        store_pending()
    except BaseException:
        # what was predicted and encodes cleanly is kept, so that a resumed run does not predict it again
        try:
            store_pending()
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass
        raise
    finally:
        if encoder is not None:
            encoder.shutdown(wait=True, cancel_futures=True)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return done - reused


def _finish(result: RunResult, task: str, card: Any, acard: Any, adapter: Adapter, samples: list[Any],
            keys: list[str], header: dict[str, Any], root: Path, loader: Any, protocol: str, config: RunConfig,
            d: D.Dist, t0: float, say: Callable[[str], None]) -> None:
    run_dir = result.run_dir
    stored = merge_parts(run_dir, header, keys)
    pred_path = run_dir / "predictions.json"
    # The new predictions are scored (or exported) from a staged file; only once that succeeded do they replace
    # the run's record, so a rerun that fails here never overwrites a finished run's files.
    staged = run_dir / ".staged-predictions.json"
    write_predictions(task, samples, stored, staged)
    partial = config.limit is not None and len(samples) < len(loader.samples())
    flags = count_flags(stored.values())
    for name, n in sorted(flags.items()):
        result.notes.append(f"{name}: {n} of {len(samples)} samples (adapter flag; see diagnostics.jsonl)")
    eval_summary = None
    if card.has_public_gt:
        from refbench.evaluate.run import evaluate, format_table, write_csv, write_json

        sub = SubsetLoader(loader, set(keys), task) if partial else loader
        try:
            extra = {"protocol_args": dict(config.protocol_args)} if config.protocol_args else {}
            res, eval_summary = evaluate(card.name, staged, root=root, protocol=protocol, missing="error",
                                         device=D.device_for(d, config.device), loader=sub,
                                         annotation_sha256=header["annotation_sha256"],
                                         per_frame=config.per_frame, **extra)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        eval_summary["provenance"]["predictions"] = str(pred_path)
        eval_summary["details"]["predictions"] = str(pred_path)
        eval_summary["run"] = {"model": acard.name, "fingerprint": header["fingerprint"], "run_dir": str(run_dir),
                               "samples": len(samples), "partial": partial, "flags": flags}
        os.replace(staged, pred_path)
        write_diagnostics(samples, task, stored, run_dir / "diagnostics.jsonl")
        write_json(eval_summary, run_dir / "summary.json")
        write_csv(res.per_sample, run_dir / "per_sample.csv")
        if config.per_frame and res.per_frame is not None:
            from refbench.evaluate.per_frame import PER_FRAME_FILE, write_per_frame

            write_per_frame(res.per_frame, run_dir / PER_FRAME_FILE, "--out")
        result.summary = eval_summary
        result.table = format_table(res, card.name, eval_summary["partial_reasons"])
        size_note = _official_size_note(card, len(samples))
        if partial:
            result.notes.append(f"--limit {config.limit}: scored {len(samples)} of {len(loader.samples())} samples; "
                                "not added to the leaderboard")
        elif size_note and config.leaderboard:
            result.notes.append(f"{size_note}: not added to the leaderboard")
        elif config.protocol_args and config.leaderboard:
            result.notes.append("--protocol-arg " + ", ".join(f"{k}={v}" for k, v in config.protocol_args.items())
                                + ": scored with a non-default protocol option; not added to the leaderboard")
        elif config.leaderboard:
            result.leaderboard_rows = _append_leaderboard(config.leaderboard, card, acard, header, eval_summary,
                                                          run_dir, adapter.options)
            if not result.leaderboard_rows:
                result.notes.append(f"leaderboard: this run's rows are already in {config.leaderboard}")
    elif partial:
        os.replace(staged, pred_path)
        write_diagnostics(samples, task, stored, run_dir / "diagnostics.jsonl")
        result.notes.append(f"--limit {config.limit}: {card.name} has no public ground truth and a partial run "
                            "is not a valid submission; no zip written")
    else:
        from refbench.export import export_submission

        staged_zip = run_dir / ".staged-submission.zip"
        try:
            rep = export_submission(card.name, staged, staged_zip, root=root, overwrite=True)
        except BaseException:
            staged.unlink(missing_ok=True)
            staged_zip.unlink(missing_ok=True)
            raise
        os.replace(staged, pred_path)
        write_diagnostics(samples, task, stored, run_dir / "diagnostics.jsonl")
        os.replace(staged_zip, run_dir / "submission.zip")
        result.submission = run_dir / "submission.zip"
        where = rep.server or (card.submission or {}).get("server")
        what = f"{rep.videos} videos" if task == "vos" else f"{rep.expressions} expressions"
        result.notes.append(f"submission zip: {result.submission} ({rep.frames} frames of {what})"
                            + (f"; upload it to {where}" if where else ""))
    _write_run_json(run_dir, config, acard, adapter, header, d, status="done", started=t0,
                    extra={"samples": len(samples), "partial": partial, "flags": flags,
                           "metrics": eval_summary["metrics"] if eval_summary else None,
                           "submission": str(result.submission) if result.submission else None})


def count_flags(items: Any) -> dict[str, int]:
    """``{flag: samples}`` over stored predictions whose diagnostics carry ``flags`` (e.g. ``no_seg``: the model
    generated no ``[SEG]``, so the prediction is empty or null)."""
    out: dict[str, int] = {}
    for item in items:
        diag = item.diagnostics if isinstance(item.diagnostics, dict) else {}
        for f in diag.get("flags") or ():
            out[str(f)] = out.get(str(f), 0) + 1
    return out


_SAMPLE_COUNT_KEYS = {"refvos": ("expressions",), "tsg": ("queries",), "res": ("sentences", "images"),
                      "vos": ("videos",)}


def _official_size_note(card: Any, n: int) -> str | None:
    """A leaderboard row under a card's name must cover the official split: say so when it does not."""
    counts = card.counts or {}
    key = next((k for k in _SAMPLE_COUNT_KEYS.get(card.task, ()) if k in counts), None)
    want = counts.get(key) if key else None
    if want is not None and n != want:
        return f"{card.name} at this root has {n:,} {key}, the official split {want:,}"
    return None


def model_label(acard: Any, options: dict[str, Any]) -> str:
    """The adapter name, with the options that differ from its card's defaults: ``prior[objective=miou]``."""
    from refbench.adapters.base import _NOT_OUTPUT_OPTIONS
    from refbench.adapters.options import not_output

    skip = _NOT_OUTPUT_OPTIONS | not_output(getattr(acard, "specs", None) or {})
    changed = [f"{k}={v}" for k, v in sorted(options.items()) if k not in skip and acard.options.get(k) != v]
    return f"{acard.name}[{','.join(changed)}]" if changed else acard.name


def _append_leaderboard(directory: str, card: Any, acard: Any, header: dict[str, Any], summary: dict[str, Any],
                        run_dir: Path, options: dict[str, Any]) -> int:
    from refbench.leaderboard import append_rows, family_of, rows_from_summary

    run_id = f"{run_dir.name}@{summary['provenance']['date']}"
    rows = rows_from_summary(summary, model=model_label(acard, options), run_id=run_id,
                             fingerprint=header["fingerprint"], source=str(run_dir))
    path = Path(directory) / f"{family_of(card.task)}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and _already_listed(path, rows):
        return 0  # a resumed run that changed nothing: its rows are there already
    append_rows(path, rows)
    return len(rows)


def _already_listed(path: Path, rows: list[Any]) -> bool:
    """Whether every row (same dataset, model, protocol, metric, value and fingerprint) is in ``path``: the same
    result of the same model, whichever run directory or command (``run``, ``demo``) produced it, is listed once."""
    from refbench.leaderboard import format_value, read_rows

    have = {(r.dataset, r.model, r.protocol, r.metric, r.value, r.fingerprint)
            for r in read_rows(path, strict=False) if r.kind == "reproduced"}
    return all((r.dataset, r.model, r.protocol, r.metric, float(format_value(r.value)), r.fingerprint) in have
               for r in rows)


def _write_run_json(run_dir: Path, config: RunConfig, acard: Any, adapter: Adapter, header: dict[str, Any],
                    d: D.Dist, status: str, started: float, extra: dict[str, Any] | None = None) -> None:
    doc = {
        "status": status,
        "config": asdict(config),
        "header": header,
        "adapter": {"card": acard.to_dict(), "options": adapter.options, "fingerprint": header["fingerprint"],
                    "fingerprint_state": adapter.fingerprint_state(), "version": adapter.version},
        "provenance": {
            "refbench_version": __version__,
            "git": _git_commit(),
            "packages": _package_versions(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "device": config.device,
            "device_name": _device_name(config.device),
            "world_size": d.world,
            "started": _dt.datetime.fromtimestamp(started, _dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_seconds": round(time.time() - started, 3),
            **_peak_memory(),
        },
        **(extra or {}),
    }
    fit = getattr(adapter, "fit_info", None)
    if fit:
        doc["adapter"]["fit"] = fit
    _atomic_json(run_dir / "run.json", doc, indent=2)


__all__ = ["DEFAULT_DATASET", "DEFAULT_MODEL", "RunConfig", "RunError", "RunResult", "SubsetLoader",
           "MergedParts", "StoreMismatch", "default_run_dir", "frame_size", "limit_count", "merge_parts", "run",
           "sample_key"]
