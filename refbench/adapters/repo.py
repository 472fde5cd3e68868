"""Models that run from the user's clone of their official repository (ReferDINO, MPG-SAM 2; later SeC and
ReferDINO-Plus): finding the clone, checking its entry points, hashing its code, importing from it.

Such a model is not a package: its eval scripts run as ``PYTHONPATH=. python eval/...`` from the repository root
and import top-level modules (``models``, ``misc``, ``util``, ``opts``). An adapter built on this module does the
same in its own process, with three guarantees:

* :func:`open_repo` -- ``--model-arg repo=DIR`` must be a folder holding every entry point the adapter calls
  (``models/__init__.py``, ``misc.py``, ...); anything missing is one line naming the folder, the file and what
  the model needs it for, plus where the official clone comes from.
* :func:`code_state` -- sha256 over the repository's tracked ``*.py`` files (``git ls-files`` when the folder is a
  git checkout, else every ``*.py`` outside hidden, build and cache folders) and over the named extra files (the
  YAML config, the checkpoint's header); plus the git commit and whether the tree has local changes. It goes
  into the adapter's ``fingerprint_state``, so a changed clone never reuses stored predictions.
* :func:`import_module` -- imports a top-level module of the clone with the clone first on ``sys.path``. Top-level
  names that a *different* clone (or another installed package) already put in ``sys.modules`` are evicted first
  (``models`` from ReferDINO must never answer for MPG-SAM 2's ``models``); the clone stays on ``sys.path`` for
  the lazy imports its code does later. One clone per top-level name at a time: two adapters from different
  clones sharing a name cannot be used in one process interleaved (each worker process runs one adapter).

Paths inside a clone's configs are relative to the repository root (the scripts' working directory); adapters
resolve them with :func:`repo_path` instead of changing the process's working directory.

Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import importlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from refbench.adapters.base import AdapterError

#: folders never hashed when the clone is not a git checkout
_SKIP_DIRS = {".git", "__pycache__", "build", "dist", ".eggs", "node_modules", ".venv", "venv", "output", "outputs",
              "ckpt", "pretrained", "data", "work_dir", "wandb"}
#: which clone each top-level module name was imported from (resolved path)
_LOADED_FROM: dict[str, Path] = {}


@dataclass(frozen=True)
class Repo:
    """A checked clone: ``path`` (resolved), the ``model`` it serves (for messages), the clone's ``source`` (e.g.
    ``https://github.com/iSEE-Laboratory/ReferDINO``)."""

    path: Path
    model: str
    source: str

    def file(self, rel: str | Path) -> Path:
        return repo_path(self, rel)


def open_repo(model: str, repo: str | Path | None, entry_points: Mapping[str, str], source: str) -> Repo:
    """The clone at ``repo`` after checking ``entry_points`` (``{relative path: what it is for}``) exist.

    Raises AdapterError (one line) when ``repo`` is unset, not a folder, or lacks an entry point."""
    if not repo:
        raise AdapterError(f"model {model} runs from a clone of its official repository: pass --model-arg repo=DIR "
                           f"(git clone {source})")
    path = Path(str(repo)).expanduser()
    if not path.is_dir():
        raise AdapterError(f"model {model}: --model-arg repo={repo}: no such folder (git clone {source})")
    path = path.resolve()
    for rel, why in entry_points.items():
        if not (path / rel).is_file():
            raise AdapterError(f"model {model}: --model-arg repo={repo}: {rel} is missing ({why}); is this a clone "
                               f"of {source}?")
    return Repo(path, model, source)


def repo_path(repo: Repo, rel: str | Path) -> Path:
    """``rel`` as the official scripts see it: relative paths are relative to the repository root."""
    p = Path(str(rel)).expanduser()
    return p if p.is_absolute() else repo.path / p


def _git(path: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def python_files(repo: Repo) -> list[Path]:
    """The clone's own ``*.py`` files, sorted: git's tracked files in a checkout, else a walk (module doc)."""
    tracked = _git(repo.path, "ls-files", "-z", "--", "*.py")
    if tracked is not None and _git(repo.path, "rev-parse", "--show-toplevel") is not None:
        top = Path(_git(repo.path, "rev-parse", "--show-toplevel").strip()).resolve()  # type: ignore[union-attr]
        if top == repo.path:
            return sorted(repo.path / p for p in tracked.split("\0") if p)
    out = []
    for f in repo.path.rglob("*.py"):
        rel = f.relative_to(repo.path).parts
        if any(part in _SKIP_DIRS or part.startswith(".") for part in rel[:-1]):
            continue
        out.append(f)
    return sorted(out)


def _sha256(path: Path, limit: int | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        if limit is None:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        else:
            h.update(fh.read(limit))
    return h.hexdigest()


def file_digest(path: Path, *, head: int | None = None) -> dict[str, Any]:
    """``{"sha256", "size"}`` of a file; with ``head``, of its first ``head`` bytes plus its size (for weights of
    several GB: the size and header change whenever the file does in practice, and reading it all per run is
    slow). Says which in ``"hashed"``."""
    size = path.stat().st_size
    if head is not None and size > head:
        return {"sha256": _sha256(path, head), "size": size, "hashed": f"first {head} bytes"}
    return {"sha256": _sha256(path), "size": size, "hashed": "all"}


def code_state(repo: Repo, extra: Mapping[str, Path] | None = None) -> dict[str, Any]:
    """What of the clone decides the outputs (module doc): ``{"code_sha256", "py_files", "commit", "dirty",
    "files": {name: sha256}}``."""
    files = python_files(repo)
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(repo.path).as_posix()}\0{_sha256(f)}\n".encode())
    commit = _git(repo.path, "rev-parse", "HEAD")
    status = _git(repo.path, "status", "--porcelain", "--untracked-files=no") if commit else None
    out: dict[str, Any] = {"code_sha256": h.hexdigest(), "py_files": len(files),
                           "commit": commit.strip() if commit else None,
                           "dirty": bool(status.strip()) if status is not None else None}
    if extra:
        out["files"] = {name: _sha256(p) for name, p in sorted(extra.items())}
    return out


def import_module(repo: Repo, name: str) -> Any:
    """``importlib.import_module(name)`` with the clone first on ``sys.path`` (module doc)."""
    top = name.split(".")[0]
    root = str(repo.path)
    if sys.path[:1] != [root]:
        while root in sys.path:
            sys.path.remove(root)
        sys.path.insert(0, root)
    loaded = sys.modules.get(top)
    if loaded is not None and _LOADED_FROM.get(top) != repo.path:
        _evict(top)
    importlib.invalidate_caches()
    try:
        mod = importlib.import_module(name)
    except ImportError as exc:
        missing = getattr(exc, "name", None)
        if missing and missing.split(".")[0] != top:
            raise AdapterError(f"model {repo.model}: {repo.path}: importing {name} needs the package {missing}, "
                               f"which this Python lacks: build the model's environment (refbench env create "
                               f"{repo.model})") from exc
        raise AdapterError(f"model {repo.model}: {repo.path}: cannot import {name} ({exc})") from exc
    origin = Path(getattr(sys.modules[top], "__file__", None) or "").resolve()
    if repo.path not in origin.parents:
        raise AdapterError(f"model {repo.model}: {name} resolved to {origin}, not to the clone {repo.path}")
    _LOADED_FROM[top] = repo.path
    return mod


def _evict(top: str) -> None:
    for key in [k for k in sys.modules if k == top or k.startswith(top + ".")]:
        del sys.modules[key]
    _LOADED_FROM.pop(top, None)


def require_attrs(repo: Repo, module: Any, names: Iterable[str], where: str) -> None:
    """Every name in ``names`` must be a callable attribute of ``module`` (an official entry point)."""
    missing = [n for n in names if not callable(getattr(module, n, None))]
    if missing:
        raise AdapterError(f"model {repo.model}: {repo.path / where} has no {', '.join(missing)} (the official "
                           f"entry point refbench calls); is this a clone of {repo.source}?")


def device_kind(device: str) -> str:
    """``"cuda"`` or ``"cpu"`` for ``torch.autocast`` from a run device (``cuda:1`` -> ``cuda``)."""
    return "cuda" if str(device).startswith("cuda") else "cpu"


def plain(obj: Any, keys: Sequence[str] = ()) -> Any:
    """A JSON-safe copy of a config value (for fingerprints): mappings and lists recursively, other values as
    they are when JSON-safe, else ``str``."""
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


__all__ = ["Repo", "code_state", "device_kind", "file_digest", "import_module", "open_repo", "plain",
           "python_files", "repo_path", "require_attrs"]
