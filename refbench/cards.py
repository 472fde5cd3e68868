"""Dataset and model cards: the registry. Reading cards never imports torch.

Cards are YAML files in the repository's ``datasets/`` and ``adapters/`` folders; a wheel carries them as
``refbench/_cards/<kind>/``. A card's ``loader`` (or ``code``) is a lazy ``"module:Class"`` reference that is
imported only when the dataset is opened.
"""

from __future__ import annotations

import difflib
import importlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from refbench.errors import RefbenchInputError

KINDS = ("datasets", "adapters", "protocols")


class CardError(RefbenchInputError, KeyError):
    """An unknown card name or a malformed card (a usage error: exit 2)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


def card_dirs(kind: str) -> list[Path]:
    """Where cards of ``kind`` live: the wheel's copy, else the checkout's folder."""
    if kind not in KINDS:
        raise ValueError(f"unknown card kind {kind!r}; expected one of {KINDS}")
    here = Path(__file__).resolve().parent
    dirs = [here / "_cards" / kind, here.parent / kind]
    return [d for d in dirs if d.is_dir()]


@dataclass(frozen=True)
class DatasetCard:
    name: str
    title: str
    task: str
    loader: str
    loader_args: dict[str, Any]
    default_root: str
    layout: list[str]
    counts: dict[str, int] | None
    ground_truth: str
    protocol: str
    reference: dict[str, Any]
    submission: dict[str, Any] | None = None
    notes: str | None = None
    generate: str | None = None
    path: Path | None = field(default=None, compare=False)

    @property
    def has_public_gt(self) -> bool:
        return self.ground_truth == "public"

    def resolve_root(self, root: str | os.PathLike | None = None) -> Path:
        """--root if given; else, for a generated card, <demo dir>/<default_root> (built on first use by the
        card's ``generate`` function, see :func:`demo_dir`); else $REFBENCH_DATA/<default_root>."""
        if root is not None:
            return Path(root)
        if self.generate:
            build = import_ref(self.generate)
            return Path(build(demo_dir())) / self.default_root
        base = os.environ.get("REFBENCH_DATA")
        if not base:
            raise FileNotFoundError(
                f"dataset {self.name}: no data root; pass --root DIR or set REFBENCH_DATA "
                f"(the card looks for $REFBENCH_DATA/{self.default_root})"
            )
        return Path(base) / self.default_root

    def open(self, root: str | os.PathLike | None = None):
        """Instantiate the card's loader on ``root`` (imports the loader module)."""
        cls = import_ref(self.loader)
        return cls(self.resolve_root(root), **self.loader_args)


_REQUIRED = ("name", "title", "task", "loader", "default_root", "layout", "ground_truth", "protocol", "reference")


def read_card_mapping(path: Path, what: str = "card") -> dict[str, Any]:
    """The YAML mapping of a card file; a CardError naming the file when it is unreadable or not a mapping."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CardError(f"{path}: cannot read {what}: {exc}") from exc
    if not isinstance(data, dict):
        raise CardError(f"{path}: a {what} must be a mapping")
    return data


def _read_card(path: Path) -> DatasetCard:
    data = read_card_mapping(path)
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise CardError(f"{path}: card misses {', '.join(missing)}")
    if data["name"] != path.stem:
        raise CardError(f"{path}: card name {data['name']!r} differs from its file name")
    known = set(DatasetCard.__dataclass_fields__) - {"path"}
    extra = set(data) - known
    if extra:
        raise CardError(f"{path}: unknown card fields {sorted(extra)}")
    data.setdefault("loader_args", {})
    data.setdefault("counts", None)
    return DatasetCard(**data, path=path)


@lru_cache(maxsize=None)
def dataset_cards() -> dict[str, DatasetCard]:
    """All dataset cards by name (the first folder of :func:`card_dirs` wins on duplicates)."""
    cards: dict[str, DatasetCard] = {}
    for d in card_dirs("datasets"):
        for path in sorted(d.glob("*.yaml")):
            if path.stem not in cards:
                cards[path.stem] = _read_card(path)
    return cards


def suggest(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=4, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else ""


def dataset_card(name: str) -> DatasetCard:
    cards = dataset_cards()
    if name not in cards:
        raise CardError(f"unknown dataset {name!r}{suggest(name, cards)} (refbench datasets list shows all)")
    return cards[name]


def demo_dir() -> Path:
    """Where generated (demo) datasets live: $REFBENCH_DEMO_DIR, else $XDG_CACHE_HOME/refbench/demo/v1
    (``~/.cache`` when XDG_CACHE_HOME is unset). Nothing is created here."""
    env = os.environ.get("REFBENCH_DEMO_DIR")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "refbench" / "demo" / "v1"


def import_ref(ref: str):
    """Import a lazy ``"package.module:Attr"`` reference."""
    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise CardError(f"bad code reference {ref!r}: expected 'package.module:Name'")
    mod = importlib.import_module(module)
    try:
        return getattr(mod, attr)
    except AttributeError as exc:
        raise CardError(f"bad code reference {ref!r}: {module} has no {attr}") from exc
