"""Per-model Python environments: ``refbench env create | list | check`` and where a model runs.

Models pin incompatible stacks (MomentSeg transformers 4.51.3; Sa2VA 4.49.0 for its InternVL2.5 checkpoints and
4.57.0 for InternVL3 / Qwen; none runs on transformers 5), so an adapter card may name the environment it needs::

    environment:
      name: sa2va-latest                  # several cards share one environment
      python: ">=3.11,<3.12"              # what the official project supports
      pins: [transformers==4.57.0]        # exact versions; decide where the model runs
      packages: [peft==0.17.1, timm==1.0.17, einops, torchvision, qwen_vl_utils]   # the remote code's imports
      optional: [flash-attn==2.7.3]       # never installed by refbench (needs a CUDA toolchain)

A card that pins ``torch`` (with ``torchvision``) gets that build instead of this interpreter's -- e.g. a model that
needs torchvision, whose wheels are built against one torch (torchvision 0.29.1 with torch 2.14.1; PyPI has no CPU
torchvision, and one beside a CPU torch breaks transformers' model loading, ADAPTERS.md 6.2). ``--torch`` replaces
those pins (your CUDA build, with ``--torch-index-url`` / ``--find-links``).

Where a model runs (:func:`worker_python`): in this interpreter when its installed versions equal every pin;
otherwise in the environment's own interpreter through the worker (:mod:`refbench.adapters.worker`); otherwise an
error naming ``refbench env create <model>``. ``--model-arg python=PATH`` picks an interpreter by hand and
``--model-arg ignore_pins=true`` forces this one.

Environments live in ``$REFBENCH_ENVS/<name>``, else ``$XDG_CACHE_HOME/refbench/envs/<name>`` (``~/.cache`` when
XDG_CACHE_HOME is unset). :func:`create` builds one with uv when it is on PATH (or beside this interpreter; about
5x faster) and with venv + pip otherwise: torch at exactly this interpreter's version (the user's build; pass an
index URL or find-links where that build comes from) unless the card pins torch, the pins, the packages (unless
``minimal``), refbench's runtime dependencies for a worker, then refbench itself without dependencies (this checkout as an editable
install, else the same release). uv does not read pip's configuration: find-links from ``PIP_FIND_LINKS`` are
passed on to it.

Nothing here imports torch or transformers: version checks read package metadata.
"""

from __future__ import annotations

from refbench.errors import RefbenchInputError

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from refbench.cards import CardError

#: What a worker needs besides the model's own packages: refbench's runtime imports (no opencv, pandas, scipy),
#: plus accelerate, which ``from_pretrained(low_cpu_mem_usage=True)`` (as the official scripts load) needs on
#: transformers 4.49.
WORKER_RUNTIME = ("numpy>=1.24", "pillow>=10.0", "pycocotools>=2.0.7", "pyyaml>=6.0", "click>=8.1", "tqdm>=4.60",
                  "av>=12", "accelerate>=0.26")

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$")
_REQ = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?\s*((?:[<>=!~]=?|===)\s*[A-Za-z0-9.*+!_-]+"
                  r"(?:\s*,\s*(?:[<>=!~]=?)\s*[A-Za-z0-9.*+!_-]+)*)?$")
_PY = re.compile(r"^\s*(>=|<=|==|<|>|!=)\s*(\d+(?:\.\d+)*)\s*$")


class EnvError(RefbenchInputError, RuntimeError):
    """An environment is missing, broken, or cannot be built (the message says what to run)."""


@dataclass(frozen=True)
class EnvSpec:
    name: str
    python: str | None = None
    pins: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    notes: str | None = None

    def pinned(self) -> dict[str, str]:
        """``{distribution name: version}`` of the pins."""
        return {m.group(1): m.group(2) for m in (_PIN.match(p) for p in self.pins) if m}

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "python": self.python, "pins": list(self.pins), "packages": list(self.packages),
               "optional": list(self.optional), "notes": self.notes}
        return out


def env_spec_from_card(raw: Any, where: str) -> EnvSpec:
    """The ``environment`` block of an adapter card; a CardError naming the card when it is malformed."""
    if not isinstance(raw, Mapping):
        raise CardError(f"{where}: environment must be a mapping (name, python, pins, packages, optional)")
    bad = set(raw) - {"name", "python", "pins", "packages", "optional", "notes"}
    if bad:
        raise CardError(f"{where}: environment: unknown keys {sorted(bad)}")
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
        raise CardError(f"{where}: environment.name must be a lower-case name (letters, digits, . _ -), got {name!r}")
    lists = {}
    for key in ("pins", "packages", "optional"):
        v = raw.get(key) or []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise CardError(f"{where}: environment.{key} must be a list of requirement strings")
        for req in v:
            if key == "pins" and not _PIN.match(req):
                raise CardError(f"{where}: environment.pins: {req!r} is not an exact pin (name==version)")
            if key != "pins" and not _REQ.match(req.strip()):
                raise CardError(f"{where}: environment.{key}: {req!r} is not a requirement (name, name==1.2, ...)")
        lists[key] = tuple(v)
    py = raw.get("python")
    if py is not None:
        if not isinstance(py, str) or not all(_PY.match(part) for part in py.split(",")):
            raise CardError(f"{where}: environment.python must be like '>=3.10,<3.12', got {py!r}")
    notes = raw.get("notes")
    return EnvSpec(name=name, python=py, notes=str(notes) if notes else None, **lists)


# ----------------------------------------------------------------------------------------------
# Versions, without importing anything heavy
# ----------------------------------------------------------------------------------------------


def installed_version(dist: str) -> str | None:
    """The installed version of distribution ``dist`` in this interpreter, or None."""
    from importlib.metadata import PackageNotFoundError, version

    for name in dict.fromkeys((dist, dist.replace("_", "-"), dist.replace("-", "_"))):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None


def pin_met(want: str, got: str | None) -> bool:
    """PEP 440 ``==want`` for an installed version: a pin without a local label (``torch==2.0.1``) is met by any
    local build of that release (``2.0.1+cu118``); a pin with one needs it exactly."""
    if got is None:
        return False
    return got == want or ("+" not in want and got.split("+", 1)[0] == want)


def unmet_pins(spec: EnvSpec, version_of: Callable[[str], str | None] = installed_version) -> list[str]:
    """``["transformers==4.57.0 (found 5.17.0)", ...]``: the pins this interpreter does not satisfy."""
    out = []
    for dist, want in spec.pinned().items():
        got = version_of(dist)
        if not pin_met(want, got):
            out.append(f"{dist}=={want} (found {got or 'none'})")
    return out


def python_ok(spec: EnvSpec, version: Sequence[int] | None = None) -> bool:
    """Whether a Python version (default: this one) satisfies ``spec.python``."""
    if not spec.python:
        return True
    have = tuple(version or sys.version_info[:3])
    for part in spec.python.split(","):
        m = _PY.match(part)
        assert m is not None  # validated when the card was read
        op, want = m.group(1), tuple(int(x) for x in m.group(2).split("."))
        n = len(want)
        cmp = (have[:n] > want) - (have[:n] < want)
        if not {">=": cmp >= 0, "<=": cmp <= 0, "==": cmp == 0, "<": cmp < 0, ">": cmp > 0, "!=": cmp != 0}[op]:
            return False
    return True


# ----------------------------------------------------------------------------------------------
# Where environments live, and where a model runs
# ----------------------------------------------------------------------------------------------


def envs_root() -> Path:
    env = os.environ.get("REFBENCH_ENVS")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "refbench" / "envs"


def env_dir(name: str) -> Path:
    return envs_root() / name


def env_python(name: str) -> Path:
    d = env_dir(name)
    return d / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def worker_python(card: Any) -> str | None:
    """None when ``card`` runs in this interpreter (its pins are met); else the interpreter of its environment;
    an EnvError naming ``refbench env create`` when that environment does not exist."""
    spec: EnvSpec | None = card.environment
    if spec is None:
        return None
    unmet = unmet_pins(spec)
    if not unmet:
        return None
    py = env_python(spec.name)
    if py.exists():
        return str(py)
    raise EnvError(f"model {card.name} needs {', '.join(unmet)} and its environment {spec.name} does not exist at "
                   f"{env_dir(spec.name)}: create it with `refbench env create {card.name}` (or pass --model-arg "
                   "python=PATH, or --model-arg ignore_pins=true to run here anyway)")


def env_cards() -> dict[str, list[Any]]:
    """``{environment name: [cards using it]}`` over every model card."""
    from refbench.adapters.registry import list_models

    out: dict[str, list[Any]] = {}
    for c in list_models():
        if c.environment is not None:
            out.setdefault(c.environment.name, []).append(c)
    return out


def spec_for(name: str) -> tuple[EnvSpec, list[Any]]:
    """The environment of model ``name`` (or alias), or the environment called ``name``; with the cards using it."""
    from refbench.adapters.registry import adapter_card, adapter_cards

    groups = env_cards()
    if name in groups:
        return groups[name][0].environment, groups[name]
    if name in adapter_cards():
        card = adapter_card(name)
        if card.environment is None:
            raise EnvError(f"model {card.name} needs no environment of its own (it runs in refbench's)")
        return card.environment, groups[card.environment.name]
    from refbench.cards import suggest

    raise EnvError(f"unknown model or environment {name!r}{suggest(name, [*groups, *adapter_cards()])} "
                   "(refbench env list shows them)")


# ----------------------------------------------------------------------------------------------
# Building
# ----------------------------------------------------------------------------------------------


@dataclass
class CreateReport:
    name: str
    path: Path
    installer: str
    seconds: float
    requirements: list[str] = field(default_factory=list)


def _repo_root() -> Path | None:
    """This checkout's root when refbench runs from one (so a worker runs the same code), else None."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "refbench").is_dir() else None


def find_uv() -> str | None:
    here = Path(sys.executable).parent / "uv"
    if here.exists():
        return str(here)
    return shutil.which("uv")


def _torch_requirement(torch: str | None) -> list[str]:
    if torch:
        return torch.split()
    v = installed_version("torch")
    if v is None:
        raise EnvError("this Python has no torch to copy into the environment: pass --torch 'torch==X' (and "
                       "--torch-index-url URL for a CUDA build)")
    return [f"torch=={v}"]


def _req_name(req: str) -> str:
    return re.split(r"[<>=!~\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def requirements(spec: EnvSpec, torch: str | None = None, minimal: bool = False) -> list[str]:
    """What :func:`create` installs (before refbench itself): torch, pins, packages, the worker runtime.

    torch: ``torch`` (``--torch``) when given, replacing the card's pins of the same packages; else the card's own
    torch pin when it has one (e.g. ``torch==2.14.1`` with ``torchvision==0.29.1`` for a model that needs
    torchvision, which must never sit beside the CPU torch); else this interpreter's torch version."""
    if torch is None and "torch" in {_req_name(p) for p in spec.pins}:
        reqs = list(spec.pins)
    else:
        given = _torch_requirement(torch)
        names = {_req_name(r) for r in given} if torch else set()
        reqs = given + [p for p in spec.pins if _req_name(p) not in names]

    def _names(rs: list[str]) -> set[str]:
        return {_req_name(r) for r in rs}

    if not minimal:
        have = _names(reqs)  # a package the torch requirement already pins (torchvision) is not asked for twice
        reqs += [p for p in spec.packages if not _names([p]) & have]
    named = _names(reqs)
    reqs += [r for r in WORKER_RUNTIME if re.split(r"[<>=]", r, maxsplit=1)[0] not in named]
    return reqs


def create(name: str, *, torch: str | None = None, torch_index_url: str | None = None,
           find_links: Sequence[str] = (), minimal: bool = False, python: str | None = None,
           installer: str = "auto", force: bool = False, log: Callable[[str], None] | None = None) -> CreateReport:
    """Build the environment of model (or environment) ``name`` (module doc). Raises EnvError with the failing
    command's last lines when a step fails."""
    say = log or (lambda _m: None)
    spec, _cards = spec_for(name)
    base = Path(python or sys.executable)
    version = _python_version(str(base))
    if not python_ok(spec, version):
        found = None if python else find_python(spec)
        if found is None:
            raise EnvError(f"environment {spec.name} needs Python {spec.python}; {base} is "
                           f"{'.'.join(map(str, version))} and no python3.N on PATH (or under pyenv) matches: "
                           "install one and pass --python PATH")
        say(f"environment {spec.name} needs Python {spec.python}: using {found[0]} "
            f"({'.'.join(map(str, found[1]))}; this one is {'.'.join(map(str, version))})")
        base, version = Path(found[0]), found[1]
    target = env_dir(spec.name)
    if target.exists():
        if not force:
            raise EnvError(f"environment {spec.name} exists at {target}; pass --force to rebuild it")
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    uv = find_uv() if installer in ("auto", "uv") else None
    if installer == "uv" and uv is None:
        raise EnvError("--installer uv: uv is not installed (pip install uv)")
    links = list(find_links) + [p for p in os.environ.get("PIP_FIND_LINKS", "").split() if p]
    reqs = requirements(spec, torch, minimal)
    t0 = time.perf_counter()
    py = str(env_python(spec.name))
    try:
        if uv:
            _run([uv, "venv", "--quiet", "--python", str(base), str(target)], say)
            extra = [a for link in dict.fromkeys(links) for a in ("--find-links", link)]
            if torch_index_url:
                extra += ["--extra-index-url", torch_index_url, "--index-strategy", "unsafe-best-match"]
            _run([uv, "pip", "install", "--quiet", "--python", py, *extra, *reqs], say)
            _run([uv, "pip", "install", "--quiet", "--python", py, "--no-deps", *_self_requirement()], say)
        else:
            _run([str(base), "-m", "venv", str(target)], say)
            extra = [a for link in dict.fromkeys(find_links) for a in ("--find-links", link)]
            if torch_index_url:
                extra += ["--extra-index-url", torch_index_url]
            _run([py, "-m", "pip", "install", "-q", *extra, *reqs], say)
            _run([py, "-m", "pip", "install", "-q", "--no-deps", *_self_requirement()], say)
    except EnvError:
        shutil.rmtree(target, ignore_errors=True)
        raise
    meta = {"name": spec.name, "spec": spec.to_dict(), "minimal": minimal, "installer": "uv" if uv else "pip",
            "requirements": reqs, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.perf_counter() - t0, 1)}
    (target / "refbench-env.json").write_text(json.dumps(meta, indent=2) + "\n")
    return CreateReport(spec.name, target, meta["installer"], meta["seconds"], reqs)


def find_python(spec: EnvSpec) -> tuple[str, tuple[int, ...]] | None:
    """An interpreter satisfying ``spec.python``: ``python3.N`` on PATH first, then pyenv's versions
    (``$PYENV_ROOT`` or ``~/.pyenv``), newest minor first; each candidate is run once to read its version (a
    pyenv shim without that version installed fails and is skipped). None when nothing matches."""
    seen: set[str] = set()
    candidates: list[str] = []
    for minor in range(20, 5, -1):
        exe = shutil.which(f"python3.{minor}")
        if exe:
            candidates.append(exe)
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if root.is_dir():
        def key(p: Path) -> tuple[int, ...]:
            return tuple(int(x) if x.isdigit() else -1 for x in p.name.split("."))

        candidates += [str(d / "bin" / "python") for d in sorted(root.iterdir(), key=key, reverse=True)
                       if (d / "bin" / "python").exists()]
    for exe in candidates:
        real = os.path.realpath(exe)
        if real in seen:
            continue
        seen.add(real)
        try:
            version = _python_version(exe)
        except EnvError:
            continue
        if version and python_ok(spec, version):
            return exe, version
    return None


def _self_requirement() -> list[str]:
    from refbench import __version__

    root = _repo_root()
    return ["-e", str(root)] if root is not None else [f"refbench=={__version__}"]


def _python_version(python: str) -> tuple[int, ...]:
    if Path(python).resolve() == Path(sys.executable).resolve():
        return tuple(sys.version_info[:3])
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:3])"], capture_output=True,
                             text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise EnvError(f"--python {python}: cannot run it ({exc})") from exc
    return tuple(int(x) for x in out.split())


def _run(cmd: list[str], say: Callable[[str], None]) -> None:
    say("$ " + " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise EnvError(f"cannot run {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        raise EnvError(f"{' '.join(cmd[:4])} ... failed (exit {proc.returncode}): {tail}")


# ----------------------------------------------------------------------------------------------
# Listing and checking
# ----------------------------------------------------------------------------------------------


_CHECK = r"""
import json, sys
from importlib.metadata import version, PackageNotFoundError
names = json.loads(sys.argv[1])
out = {"python": ".".join(map(str, sys.version_info[:3])), "versions": {}, "imports": {}}
for n in names:
    try:
        out["versions"][n] = version(n)
    except PackageNotFoundError:
        out["versions"][n] = None
for mod in ("torch", "transformers", "refbench.adapters.worker"):
    try:
        __import__(mod)
        out["imports"][mod] = None
    except Exception as exc:
        out["imports"][mod] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


@dataclass
class CheckReport:
    name: str
    path: Path
    exists: bool
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    versions: dict[str, str | None] = field(default_factory=dict)
    python: str | None = None

    @property
    def ok(self) -> bool:
        return self.exists and not self.problems


def _dist(req: str) -> str:
    return re.split(r"[<>=!~\[ ]", req.strip(), maxsplit=1)[0]


def check(name: str) -> CheckReport:
    """Whether environment ``name`` (or model ``name``'s) exists, imports torch, transformers and refbench's
    worker, and has the pinned versions; the card's other packages missing are warnings."""
    spec, _cards = spec_for(name)
    py = env_python(spec.name)
    rep = CheckReport(spec.name, env_dir(spec.name), py.exists())
    if not rep.exists:
        rep.problems.append(f"{env_dir(spec.name)} does not exist (refbench env create {spec.name})")
        return rep
    names = ["torch", *spec.pinned(), *(_dist(p) for p in spec.packages)]
    try:
        proc = subprocess.run([str(py), "-c", _CHECK, json.dumps(names)], capture_output=True, text=True,
                              timeout=600, stdin=subprocess.DEVNULL)
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        rep.problems.append(f"{py} does not run the check ({exc})")
        return rep
    rep.python, rep.versions = doc["python"], doc["versions"]
    for mod, err in doc["imports"].items():
        if err:
            rep.problems.append(f"import {mod} fails: {err}")
    for dist, want in spec.pinned().items():
        got = rep.versions.get(dist)
        if not pin_met(want, got):
            rep.problems.append(f"{dist} is {got or 'missing'}, the card pins {want}")
    for p in spec.packages:
        if rep.versions.get(_dist(p)) is None:
            rep.warnings.append(f"{_dist(p)} is missing (the real remote code imports it; built with --minimal?)")
    return rep


def list_envs() -> list[dict[str, Any]]:
    """One row per environment named by a card: name, path, whether it exists, its cards, pins, build info."""
    rows = []
    for env, cards in sorted(env_cards().items()):
        d = env_dir(env)
        meta: dict[str, Any] = {}
        if (d / "refbench-env.json").is_file():
            try:
                meta = json.loads((d / "refbench-env.json").read_text())
            except ValueError:
                meta = {}
        rows.append({"name": env, "path": str(d), "exists": env_python(env).exists(),
                     "cards": [c.name for c in cards], "pins": list(cards[0].environment.pins),
                     "minimal": meta.get("minimal"), "installer": meta.get("installer"),
                     "seconds": meta.get("seconds"), "here": not unmet_pins(cards[0].environment)})
    return rows


__all__ = ["CheckReport", "CreateReport", "EnvError", "EnvSpec", "WORKER_RUNTIME", "check", "create", "env_dir",
           "env_python", "env_spec_from_card", "envs_root", "find_python", "installed_version", "list_envs",
           "pin_met", "python_ok",
           "requirements", "spec_for", "unmet_pins", "worker_python"]
