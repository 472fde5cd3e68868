"""Run an adapter in a worker process with another Python (its own virtual environment).

Models pin incompatible stacks (Sa2VA transformers 4.57, MomentSeg 4.51.3, ReferDINO 4.48.3 plus a compiled op),
so the harness must not care which packages the model needs: ``--model-arg python=/envs/sa2va/bin/python``
runs any adapter out of process. The parent keeps datasets, the store and the scorers; the worker gets frame
paths (never decoded pixels), decodes them itself and answers with RLE masks or spans. The worker's environment
needs refbench importable (``pip install --no-deps refbench`` plus numpy, pillow, pycocotools) and the model's
own packages.

Protocol: one JSON object per line on the worker's stdin / stdout (its stderr is passed through, for logs);
every reply has ``"ok"`` and, when false, ``"error"`` and ``"traceback"``.

* ``{"op": "setup", "code": "module:Class", "card": name, "options": {...}, "context": {"device", "dataset", "root",
  "run_dir"}}``
  -> ``{"ok": true, "fingerprint": str, "fingerprint_state": {...}, "version": str, "tasks": [...],
  "uses_ground_truth": bool}``
* ``{"op": "predict", "task": "refvos" | "tsg" | "res", "requests": [...]}`` -> ``{"ok": true, "predictions":
  [{"payload": {...}, "diagnostics": {...}}]}``. Requests: refvos ``{"sample_id", "video", "exp_id", "text",
  "frames": [names], "paths": [paths], "size": [H, W]}``; tsg ``{"sample_id", "video", "query", "duration",
  "video_path"}``; res ``{"sample_id", "image_id", "text", "image_path", "size"}``; vos ``{"sample_id", "video",
  "frames", "paths", "size", "overlap", "prompts": [{"obj_id", "frame", "rle"}]}`` (each prompt mask a COCO RLE
  with the index of its frame). Payloads are what
  :meth:`refbench.adapters.base.Adapter.predict_payloads` makes in the worker, in the store's format: refvos
  ``{"size": [H, W], "rles": [counts, ...]}``, tsg ``{"spans": [[s, e], ...], "text": str | null}``, res
  ``{"size": [H, W], "counts": str}``, vos ``{"size": [H, W], "frames": [names], "objects": {obj_id: [counts, ...]}}``.
* ``{"op": "close"}`` -> ``{"ok": true}``, then the worker exits.

Adapters that read the ground truth (the oracle, ``uses_ground_truth``) cannot run in a worker. The prompt masks of
the ``vos`` task are not that: they are the benchmark protocol's input, sent as RLE, and any adapter may use them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import traceback
from collections import deque
from pathlib import Path
from typing import Any, Mapping, Sequence

from refbench.adapters.base import (
    Adapter,
    AdapterError,
    Frames,
    GroundingPrediction,
    GroundingRequest,
    ImagePrediction,
    ImageRequest,
    RunContext,
    VideoPrediction,
    VideoRequest,
    VosPrediction,
    VosPrompt,
    VosRequest,
)

PROTOCOL_VERSION = 1


# ----------------------------------------------------------------------------------------------
# Parent side
# ----------------------------------------------------------------------------------------------


class WorkerAdapter(Adapter):
    """Proxy for adapter ``code`` running under interpreter ``python`` (see the module doc)."""

    needs_pixels = False  # the worker decodes frames itself, from paths

    def __init__(self, code: str, python: str, card_name: str, **options: Any) -> None:
        super().__init__(**options)
        self.code, self.python, self.name = code, python, card_name
        self._proc: subprocess.Popen | None = None
        self._stderr_tail: deque[str] = deque(maxlen=20)
        self._remote: dict[str, Any] = {}

    # -- process ------------------------------------------------------------------------------------
    def _start(self) -> None:
        if not Path(self.python).exists() and os.sep in self.python:
            raise AdapterError(f"model {self.name}: python={self.python} does not exist")
        try:
            self._proc = subprocess.Popen(
                [self.python, "-m", "refbench.adapters.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, bufsize=1,
            )
        except OSError as exc:
            raise AdapterError(f"model {self.name}: cannot start worker {self.python} ({exc})") from exc
        threading.Thread(target=self._pump_stderr, daemon=True).start()

    def _pump_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr_tail.append(line.rstrip("\n"))
            sys.stderr.write(f"[{self.name} worker] {line}")

    def _call(self, message: Mapping[str, Any]) -> dict[str, Any]:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise AdapterError(f"model {self.name}: worker not started")
        try:
            proc.stdin.write(json.dumps(message, separators=(",", ":")) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            code = proc.wait(timeout=30)
            tail = " | ".join(list(self._stderr_tail)[-5:])
            raise AdapterError(f"model {self.name}: worker {self.python} exited with code {code} during "
                               f"{message.get('op')}" + (f": {tail}" if tail else ""))
        try:
            reply = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AdapterError(f"model {self.name}: worker wrote a non-protocol line to stdout: {line[:200]!r} "
                               "(adapters must log to stderr)") from exc
        if not reply.get("ok"):
            raise AdapterError(f"model {self.name} (worker): {reply.get('error')}")
        return reply

    # -- Adapter API ----------------------------------------------------------------------------------
    def setup(self, context: RunContext) -> None:
        self._start()
        ctx = {"device": context.device, "dataset": context.dataset,
               "root": str(context.root) if context.root else None,
               "run_dir": str(context.run_dir) if context.run_dir else None, "seed": context.seed}
        self._remote = self._call({"op": "setup", "protocol": PROTOCOL_VERSION, "code": self.code, "card": self.name,
                                   "options": self.options, "not_output": sorted(self.not_output_options),
                                   "context": ctx})
        if self._remote.get("uses_ground_truth"):
            self.close()
            raise ValueError(f"model {self.name} reads the ground truth and cannot run in a worker process")
        self.tasks = frozenset(self._remote.get("tasks") or ())  # type: ignore[misc]
        self.version = str(self._remote.get("version", "1"))  # type: ignore[misc]

    def fingerprint(self) -> str:
        """The worker adapter's own fingerprint: outputs do not depend on which process computes them."""
        if "fingerprint" not in self._remote:
            raise AdapterError(f"model {self.name}: fingerprint asked before setup")
        return str(self._remote["fingerprint"])

    def fingerprint_state(self) -> Mapping[str, Any]:
        return dict(self._remote.get("fingerprint_state") or {})

    def predict_payloads(self, task: str, requests: Sequence[Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """The worker's checked, encoded predictions, stored as they arrive (no decode and re-encode here);
        only their shape is checked against the requests."""
        out = self._call({"op": "predict", "task": task, "requests": [_request_doc(task, r) for r in requests]})
        preds = out["predictions"]
        if len(preds) != len(requests):
            raise AdapterError(f"model {self.name} (worker): {len(preds)} predictions for {len(requests)} requests")
        for r, p in zip(requests, preds):
            payload = p.get("payload")
            if task == "res" and payload is None:
                continue  # "no mask": scored by the protocol's rule for null
            if task != "tsg" and (not isinstance(payload, dict) or list(payload.get("size", ())) != list(r.size)):
                raise AdapterError(f"model {self.name} (worker): {r.sample_id}: payload does not match size {r.size}")
            if task == "refvos" and len(payload.get("rles", ())) != len(r.frames):
                raise AdapterError(f"model {self.name} (worker): {r.sample_id}: not one mask per frame")
            if task == "vos":
                from refbench.runs.vos import check_vos_payload

                check_vos_payload(payload, r, f"model {self.name} (worker)")
        return [(p["payload"], p.get("diagnostics") or {}) for p in preds]

    # The typed API, for callers outside a run (notebooks): the same payloads, decoded.
    def predict_video(self, requests: Sequence[VideoRequest]) -> list[VideoPrediction]:
        from refbench.runs.store import decode_masks

        return [VideoPrediction(decode_masks(p), d) for p, d in self.predict_payloads("refvos", requests)]

    def predict_vos(self, requests: Sequence[VosRequest]) -> list[VosPrediction]:
        from refbench.runs.vos import decode_vos

        return [VosPrediction(decode_vos(p), d) for p, d in self.predict_payloads("vos", requests)]

    def predict_grounding(self, requests: Sequence[GroundingRequest]) -> list[GroundingPrediction]:
        return [GroundingPrediction([tuple(x) for x in p["spans"]], p.get("text"), d)
                for p, d in self.predict_payloads("tsg", requests)]

    def predict_image(self, requests: Sequence[ImageRequest]) -> list[ImagePrediction]:
        from refbench.runs.store import decode_masks

        return [ImagePrediction(None if p is None else decode_masks({"size": p["size"], "rles": [p["counts"]]})[0], d)
                for p, d in self.predict_payloads("res", requests)]

    def close(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        try:
            if proc.poll() is None and proc.stdin is not None:
                proc.stdin.write(json.dumps({"op": "close"}) + "\n")
                proc.stdin.flush()
                proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            proc.kill()
            proc.wait()


# ----------------------------------------------------------------------------------------------
# Worker side
# ----------------------------------------------------------------------------------------------


def _serve(stdin: Any, stdout: Any) -> int:
    from refbench.cards import import_ref
    from refbench.runs.store import jsonable

    adapter: Adapter | None = None

    def reply(doc: dict[str, Any]) -> None:
        stdout.write(json.dumps(doc, separators=(",", ":"), default=jsonable) + "\n")
        stdout.flush()

    for line in stdin:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
            op = msg.get("op")
            if op == "setup":
                ctx = msg.get("context") or {}
                if ctx.get("seed") is not None:  # the run's --seed, in this process too (refbench.runs.seeding)
                    from refbench.runs.seeding import seed_everything

                    seed_everything(int(ctx["seed"]))
                cls = import_ref(msg["code"])
                adapter = cls(**(msg.get("options") or {}))
                adapter.not_output_options = adapter.not_output_options | frozenset(msg.get("not_output") or ())
                adapter.card_name = msg.get("card")
                if msg.get("card") and not getattr(adapter, "name", None):
                    adapter.name = msg["card"]
                adapter.setup(RunContext(device=ctx.get("device") or "cpu", dataset=ctx.get("dataset"),
                                         root=Path(ctx["root"]) if ctx.get("root") else None,
                                         run_dir=Path(ctx["run_dir"]) if ctx.get("run_dir") else None,
                                         seed=ctx.get("seed")))
                reply({"ok": True, "fingerprint": adapter.fingerprint(),
                       "fingerprint_state": dict(adapter.fingerprint_state()), "version": adapter.version,
                       "tasks": sorted(adapter.tasks),
                       "uses_ground_truth": bool(getattr(adapter, "uses_ground_truth", False))})
            elif op == "predict":
                if adapter is None:
                    raise AdapterError("predict before setup")
                task = msg["task"]
                reqs = [_request_from_doc(task, r) for r in msg["requests"]]
                reply({"ok": True, "predictions": [{"payload": p, "diagnostics": d}
                                                   for p, d in adapter.predict_payloads(task, reqs)]})
            elif op == "close":
                if adapter is not None:
                    adapter.close()
                reply({"ok": True})
                return 0
            else:
                raise AdapterError(f"unknown op {op!r}")
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the parent as a message
            reply({"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
    return 0


def _request_doc(task: str, r: Any) -> dict[str, Any]:
    """A request as the protocol sends it (frame paths, never pixels)."""
    if task == "refvos":
        return {"sample_id": r.sample_id, "video": r.video, "exp_id": r.exp_id, "text": r.text,
                "frames": list(r.frames.names), "paths": [str(p) for p in r.frames.paths], "size": list(r.size)}
    if task == "tsg":
        return {"sample_id": r.sample_id, "video": r.video, "query": r.query, "duration": r.duration,
                "video_path": str(r.video_path) if r.video_path else None}
    if task == "vos":
        return {"sample_id": r.sample_id, "video": r.video, "frames": list(r.frames.names),
                "paths": [str(p) for p in r.frames.paths], "size": list(r.size), "overlap": r.overlap,
                "prompts": [{"obj_id": p.obj_id, "frame": p.frame, "rle": dict(p.rle)} for p in r.prompts]}
    return {"sample_id": r.sample_id, "image_id": r.image_id, "text": r.text, "image_path": str(r.image_path),
            "size": list(r.size)}


def _request_from_doc(task: str, r: Mapping[str, Any]) -> Any:
    """Inverse of :func:`_request_doc`, in the worker."""
    if task == "refvos":
        return VideoRequest(r["sample_id"], r["video"], r["exp_id"], r["text"], Frames(r["frames"], r["paths"]),
                            tuple(r["size"]))
    if task == "tsg":
        return GroundingRequest(r["sample_id"], r["video"], r["query"], r["duration"],
                                Path(r["video_path"]) if r.get("video_path") else None)
    if task == "res":
        return ImageRequest(r["sample_id"], r["image_id"], r["text"], Path(r["image_path"]), tuple(r["size"]))
    if task == "vos":
        from refbench.adapters.base import OVERLAP_RULES

        if r.get("overlap") not in OVERLAP_RULES:
            raise AdapterError(f"vos request {r.get('sample_id')}: overlap must be one of {', '.join(OVERLAP_RULES)}")
        prompts = tuple(VosPrompt(str(p["obj_id"]), int(p["frame"]), dict(p["rle"])) for p in r["prompts"])
        n = len(r["frames"])
        for p in prompts:
            if not 0 <= p.frame < n:
                raise AdapterError(f"vos request {r['sample_id']}: prompt of object {p.obj_id} on frame {p.frame}, "
                                   f"outside the {n} frames")
        return VosRequest(r["sample_id"], r["video"], Frames(r["frames"], r["paths"]), tuple(r["size"]), prompts,
                          r["overlap"])
    raise AdapterError(f"unknown task {task!r}")


def main() -> int:
    """Worker entry point (``python -m refbench.adapters.worker``): the protocol on stdin/stdout. Anything the
    adapter prints goes to stderr, so stdout carries protocol lines only; and ``sys.stdin`` becomes /dev/null,
    so nothing the adapter runs can read (or swallow) a protocol line. transformers' "trust remote code? [y/N]"
    prompt, for one, reads stdin: on the pipe it stalled ~18 s and could eat a queued request (ADAPTERS.md 6.3);
    on /dev/null it fails at once with its own message."""
    protocol_in, protocol_out = sys.stdin, sys.stdout
    sys.stdout = sys.stderr
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    return _serve(protocol_in, protocol_out)


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the tests
    sys.exit(main())


__all__ = ["PROTOCOL_VERSION", "WorkerAdapter", "main"]
