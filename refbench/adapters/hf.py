"""Shared by every adapter that loads a Hugging Face-style checkpoint: where the weights are, what code they run,
and loading them the way the official eval scripts do (dtype always passed, ``trust_remote_code`` stated).

* :func:`resolve_checkpoint` -- ``--model-arg checkpoint=DIR``, else the Hugging Face cache when it holds the card's
  pinned revision (``snapshot_download(..., local_files_only=True)``), else ModelScope's cache (MomentSeg), else a
  one-line error giving the exact download command. Only ``--model-arg download=true`` fetches anything.
* :func:`code_hash` -- sha256 of every ``*.py`` and ``config.json`` in the checkpoint folder: changed remote code
  changes the adapter's fingerprint, so stored predictions are never reused across it.
* :func:`trust_notice` -- the one line a run prints, once per process, naming the code it is about to run.
* :func:`load_model` / :func:`load_tokenizer` -- ``from_pretrained(..., trust_remote_code=True,
  local_files_only=True)`` with the dtype keyword this transformers takes (``torch_dtype`` before 4.56, ``dtype``
  after: 4.57 and 5.x default to different dtypes when none is given), then ``.eval()`` and ``.to(device)`` unless a
  ``device_map`` places the model. The official scripts call ``.cuda()``; adapters never do: the device comes from
  the run (under torchrun, this rank's ``cuda:LOCAL_RANK``).

Heavy imports (torch, transformers, huggingface_hub) happen inside the functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from refbench.adapters.base import AdapterError

_NOTICED: set[str] = set()


# ----------------------------------------------------------------------------------------------
# Where the weights are
# ----------------------------------------------------------------------------------------------


def download_command(model: str, weights: Mapping[str, Any]) -> str:
    """The exact command that fetches ``weights`` into the cache refbench reads."""
    if weights.get("hub"):
        rev = weights.get("revision")
        return f"huggingface-cli download {weights['hub']}" + (f" --revision {rev}" if rev else "")
    ms = weights["modelscope"]
    return f"modelscope download --model {ms} --local_dir ./{ms.split('/')[-1]}"


def _modelscope_cached(model_id: str) -> Path | None:
    base = os.environ.get("MODELSCOPE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "modelscope", "hub")
    for d in (Path(base) / "models" / model_id, Path(base) / model_id):
        if (d / "config.json").is_file():
            return d
    return None


def resolve_checkpoint(model: str, weights: Mapping[str, Any] | None, options: Mapping[str, Any]) -> tuple[Path, dict]:
    """``(checkpoint folder, provenance)``; provenance says where it came from and the resolved revision.

    Raises AdapterError with one line (what is missing, the command that fetches it) when no weights are found.
    """
    given = options.get("checkpoint")
    if given:
        path = Path(str(given)).expanduser()
        if not (path / "config.json").is_file():
            raise AdapterError(f"model {model}: --model-arg checkpoint={given}: no config.json there (a checkpoint "
                               "folder as the official weights ship it)")
        return path.resolve(), {"source": "checkpoint", "revision": snapshot_revision(path)}
    weights = weights or {}
    if not weights:
        raise AdapterError(f"model {model}: no weights named on its card; pass --model-arg checkpoint=DIR")
    download = bool(options.get("download"))
    hub, ms = weights.get("hub"), weights.get("modelscope")
    rev = options.get("revision") or weights.get("revision")
    if hub:
        from huggingface_hub import snapshot_download

        try:
            path = Path(snapshot_download(hub, revision=rev, local_files_only=True))
            return path, {"source": "hf-cache", "repo": hub, "revision": snapshot_revision(path) or rev}
        except Exception as exc:  # noqa: BLE001 - huggingface_hub raises several kinds for "not cached"
            if not download:
                raise AdapterError(
                    f"model {model}: {hub}" + (f" at revision {rev}" if rev else "") + " is not in the Hugging Face "
                    f"cache ({os.environ.get('HF_HOME') or '~/.cache/huggingface'}); fetch it with "
                    f"`{download_command(model, {**weights, 'revision': rev})}`, or pass --model-arg checkpoint=DIR "
                    "(or --model-arg download=true)") from exc
        path = Path(snapshot_download(hub, revision=rev))
        return path, {"source": "hf-download", "repo": hub, "revision": snapshot_revision(path) or rev}
    cached = _modelscope_cached(ms)
    if cached is not None:
        return cached.resolve(), {"source": "modelscope-cache", "repo": ms, "revision": None}
    if not download:
        raise AdapterError(f"model {model}: no weights: fetch them with `{download_command(model, weights)}` and "
                           f"pass --model-arg checkpoint=./{ms.split('/')[-1]} (or --model-arg download=true)")
    try:
        from modelscope import snapshot_download as ms_download
    except ImportError as exc:
        raise AdapterError(f"model {model}: --model-arg download=true needs the modelscope package "
                           "(pip install modelscope)") from exc
    path = Path(ms_download(ms))
    return path, {"source": "modelscope-download", "repo": ms, "revision": None}


def snapshot_revision(path: Path) -> str | None:
    """The commit sha of a Hugging Face cache snapshot folder (``.../snapshots/<sha>``), else None."""
    p = Path(path)
    if p.parent.name == "snapshots" and len(p.name) == 40:
        return p.name
    return None


def code_hash(path: Path) -> dict[str, Any]:
    """``{"sha256": ..., "files": {relative path: sha256}}`` over every ``*.py`` and ``config.json`` below
    ``path`` (symlinks of the HF cache followed)."""
    root = Path(path)
    files = sorted({*root.rglob("*.py"), *root.rglob("config.json")})
    digests = {}
    for f in files:
        if f.is_file():
            digests[f.relative_to(root).as_posix()] = hashlib.sha256(f.read_bytes()).hexdigest()
    h = hashlib.sha256()
    for rel in sorted(digests):
        h.update(f"{rel}\0{digests[rel]}\n".encode())
    return {"sha256": h.hexdigest(), "files": digests}


def files_hash(path: Path, names: tuple[str, ...]) -> str | None:
    """sha256 over the named small files of a folder (those present), e.g. a base model's processor configs."""
    root = Path(path)
    h = hashlib.sha256()
    seen = False
    for n in names:
        f = root / n
        if f.is_file():
            h.update(f"{n}\0".encode() + hashlib.sha256(f.read_bytes()).hexdigest().encode())
            seen = True
    return h.hexdigest() if seen else None


def trust_notice(model: str, path: Path, sha256: str) -> None:
    """Say once per process (on rank 0) that the checkpoint's own code will run."""
    key = f"{path}:{sha256}"
    if key in _NOTICED or os.environ.get("RANK", "0") != "0":
        return
    _NOTICED.add(key)
    print(f"refbench: model {model} runs the Python code shipped in its checkpoint (trust_remote_code=True): "
          f"{path} (*.py + config.json sha256 {sha256[:12]})", file=sys.stderr)


def read_config(path: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise AdapterError(f"{Path(path) / 'config.json'}: cannot read the checkpoint's config ({exc})") from exc


def auto_map_class(config: Mapping[str, Any], key: str = "AutoModel") -> str:
    """The ``module.Class`` an ``auto_map`` entry names (``repo--module.Class`` forms reduced), or ''."""
    ref = (config.get("auto_map") or {}).get(key) or ""
    if isinstance(ref, (list, tuple)):
        ref = ref[0] or ""
    return str(ref).split("--")[-1]


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------


def torch_dtype(name: str):
    import torch

    try:
        return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]
    except KeyError as exc:
        raise AdapterError(f"--model-arg dtype={name}: expected bfloat16, float16 or float32") from exc


def dtype_kwargs(dtype_name: str) -> dict[str, Any]:
    """The dtype keyword this transformers takes: ``dtype`` from 4.56 on (``torch_dtype`` is deprecated there),
    ``torch_dtype`` before."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    return {key: torch_dtype(dtype_name)}


def transformers_version() -> str:
    import transformers

    return str(transformers.__version__)


def _missing_package(model: str, exc: ImportError) -> AdapterError:
    mod = getattr(exc, "name", None)
    what = f"imports {mod}, which this Python lacks" if mod else f"needs a package this Python lacks ({exc})"
    return AdapterError(f"model {model}: loading the checkpoint {what}: install it, or build the model's "
                        f"environment (refbench env create {model})")


def load_model(model: str, path: Path, *, dtype: str, device: str, device_map: str | None = None,
               flash_attn: bool = True, config: Any = None, auto_class: str = "AutoModel") -> Any:
    """``AutoModel.from_pretrained(path, trust_remote_code=True, local_files_only=True, low_cpu_mem_usage=True,
    use_flash_attn=flash_attn, <dtype>)`` as the official eval scripts call it, ``.eval()``, then on ``device``
    (or placed by ``device_map``)."""
    import transformers

    kwargs: dict[str, Any] = {"trust_remote_code": True, "local_files_only": True, "low_cpu_mem_usage": True,
                              "use_flash_attn": bool(flash_attn), **dtype_kwargs(dtype)}
    if config is not None:
        kwargs["config"] = config
    if device_map:
        kwargs["device_map"] = device_map
    try:
        m = getattr(transformers, auto_class).from_pretrained(str(path), **kwargs)
    except ImportError as exc:
        raise _missing_package(model, exc) from exc
    except AttributeError as exc:
        if "all_tied_weights_keys" in str(exc):
            raise AdapterError(f"model {model}: its remote code does not run on transformers "
                               f"{transformers.__version__} (it never calls post_init, which transformers 5 needs); "
                               f"use its environment: refbench env create {model}") from exc
        raise
    m = m.eval()
    if not device_map:
        m = m.to(device)
    return m


def load_tokenizer(model: str, path: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), trust_remote_code=True, local_files_only=True)
    except ImportError as exc:
        raise _missing_package(model, exc) from exc


def load_processor(model: str, path: Path) -> Any:
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(str(path), trust_remote_code=True, local_files_only=True)
    except ImportError as exc:
        raise _missing_package(model, exc) from exc


def offline_unless(download: bool) -> None:
    """Before transformers is imported: no hub access unless the user asked for a download."""
    if not download and "transformers" not in sys.modules:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")


class PeakMemory:
    """Peak CUDA memory (MiB) of one call on ``device``; None on CPU."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.mib: float | None = None

    def __enter__(self) -> "PeakMemory":
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats(torch.device(self.device))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.startswith("cuda"):
            import torch

            self.mib = round(torch.cuda.max_memory_allocated(torch.device(self.device)) / 2**20, 1)


def no_grad():
    import torch

    return torch.no_grad()


__all__ = ["PeakMemory", "auto_map_class", "code_hash", "download_command", "dtype_kwargs", "files_hash",
           "load_model", "load_processor", "load_tokenizer", "no_grad", "offline_unless", "read_config",
           "resolve_checkpoint", "snapshot_revision", "torch_dtype", "transformers_version", "trust_notice"]
