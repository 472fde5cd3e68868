"""Dataset and model cards: the registry. Reading cards never imports torch.

Cards are YAML files in the repository's ``datasets/``, ``adapters/``, ``protocols/`` and ``suites/`` folders;
a wheel carries them as ``refbench/_cards/<kind>/``. A card's ``loader`` (or ``code``) is a lazy
``"module:Class"`` reference that is imported only when the dataset is opened.

Users add their own cards (:func:`user_card_dirs`):

* ``$REFBENCH_CARDS``: folders (``os.pathsep``-separated) laid out like the repository, each holding
  ``datasets/``, ``adapters/`` and / or ``suites/`` with one YAML card per file. Protocol cards cannot come from
  there: a protocol is an evaluator inside refbench, which a card only describes.
* the entry-point group ``refbench.datasets`` (:data:`DATASET_ENTRY_POINTS`): ``name = "package.module:ATTR"``,
  where ``ATTR`` is the card as a mapping, or the path of its YAML file (adapters have ``refbench.adapters``).

A user's card is read and checked exactly as a built-in one (:func:`check_dataset_card`), and it may not
replace another card: a name that a built-in (or another user) card already has is refused, naming both files,
so a number reported under a built-in name always means the built-in split.
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

KINDS = ("datasets", "adapters", "protocols", "suites")
#: card kinds that $REFBENCH_CARDS folders may hold
USER_KINDS = ("datasets", "adapters", "suites")
CARDS_ENV = "REFBENCH_CARDS"
DATASET_ENTRY_POINTS = "refbench.datasets"
TASKS = ("refvos", "vos", "tsg", "res")
GROUND_TRUTH = ("public", "server")
#: submission formats a card may name (refbench.export.FORMATS; a test keeps the two equal)
SUBMISSION_FORMATS = ("mevis", "refytvos", "davis", "ytvos")


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


def user_card_dirs(kind: str, env: str | None = None) -> list[Path]:
    """``<folder>/<kind>`` for each folder of ``$REFBENCH_CARDS`` (``env``: its value) that has one. A listed
    folder that does not exist, or holds none of ``datasets/``, ``adapters/``, ``suites/``, is a CardError (a
    mistyped setting never silently adds nothing); so is a ``protocols/`` folder there."""
    if kind not in KINDS:
        raise ValueError(f"unknown card kind {kind!r}; expected one of {KINDS}")
    raw = os.environ.get(CARDS_ENV, "") if env is None else env
    out: list[Path] = []
    for part in raw.split(os.pathsep):
        if not part.strip():
            continue
        base = Path(part).expanduser()
        if not base.is_dir():
            raise CardError(f"{CARDS_ENV}: {base} is not a folder")
        if (base / "protocols").is_dir():
            raise CardError(f"{CARDS_ENV}: {base / 'protocols'}: protocol cards cannot be added (a protocol is an "
                            "evaluator inside refbench; a dataset card names one of refbench's protocols)")
        if not any((base / k).is_dir() for k in USER_KINDS):
            raise CardError(f"{CARDS_ENV}: {base} holds no {', '.join(k + '/' for k in USER_KINDS)} folder "
                            "(one YAML card per file inside)")
        if (base / kind).is_dir() and kind in USER_KINDS:
            out.append(base / kind)
    return out


def shadow_error(path: Any, name: str, what: str, other: Any) -> CardError:
    """The refusal of a user card whose name another card already has."""
    return CardError(f"{path}: {what} {name!r} is already defined by {other}; a card from {CARDS_ENV} or an entry "
                     "point may not replace another one: give it another name")


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
    origin: str = field(default="built-in", compare=False)  # "built-in", "user folder DIR", "entry point (dist)"

    @property
    def has_public_gt(self) -> bool:
        return self.ground_truth == "public"

    def to_dict(self) -> dict[str, Any]:
        """The card's fields (``path`` as text) and where it comes from (``origin``), for ``--json``."""
        out = {f: getattr(self, f) for f in self.__dataclass_fields__}
        out["path"] = str(self.path) if self.path else None
        return out

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


def _card_from_mapping(data: dict[str, Any], where: str, path: Path | None, origin: str) -> DatasetCard:
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise CardError(f"{where}: card misses {', '.join(missing)}")
    known = set(DatasetCard.__dataclass_fields__) - {"path", "origin"}
    extra = set(data) - known
    if extra:
        raise CardError(f"{where}: unknown card fields {sorted(extra)}")
    data = dict(data)
    data.setdefault("loader_args", {})
    data.setdefault("counts", None)
    card = DatasetCard(**data, path=path, origin=origin)
    check_dataset_card(card, where)
    return card


def _read_card(path: Path, origin: str = "built-in") -> DatasetCard:
    data = read_card_mapping(path)
    if "name" in data and data["name"] != path.stem:
        raise CardError(f"{path}: card name {data['name']!r} differs from its file name")
    return _card_from_mapping(data, str(path), path, origin)


def check_name(name: Any, where: str, what: str = "card") -> None:
    """A card name: text without commas, whitespace or path separators (``--dataset a,b`` splits on commas)."""
    if not isinstance(name, str) or not name or any(c in name for c in ", \t\n/\\") or name != name.strip():
        raise CardError(f"{where}: {what} name {name!r} must be text without commas, spaces or slashes")


def check_dataset_card(card: DatasetCard, where: str) -> None:
    """The checks every dataset card passes, built-in or user: field types, a known task and ground-truth kind,
    a ``module:Class`` loader, a protocol card of the card's task, official counts as whole numbers, a
    submission format the exporters know (and one for every server-scored split). Reads YAML only."""
    check_name(card.name, where, "dataset")

    def bad(msg: str) -> CardError:
        return CardError(f"{where}: {msg}")

    if not isinstance(card.title, str) or not card.title.strip():
        raise bad("title must be text")
    if card.task not in TASKS:
        raise bad(f"task {card.task!r} is not one of {', '.join(TASKS)}")
    if card.ground_truth not in GROUND_TRUTH:
        raise bad(f"ground_truth {card.ground_truth!r} is not one of {', '.join(GROUND_TRUTH)}")
    if not isinstance(card.loader, str) or card.loader.count(":") != 1 or not all(card.loader.split(":")):
        raise bad(f"loader {card.loader!r} is not a 'package.module:Class' reference")
    if not isinstance(card.loader_args, dict):
        raise bad("loader_args must be a mapping")
    if not isinstance(card.default_root, str) or not card.default_root:
        raise bad("default_root must be a folder name")
    if not isinstance(card.layout, list) or not card.layout or not all(isinstance(x, str) and x for x in card.layout):
        raise bad("layout must be a non-empty list of paths")
    if card.counts is not None and (not isinstance(card.counts, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in card.counts.items())):
        raise bad("counts must map names to whole numbers >= 0")
    if not isinstance(card.reference, dict) or not card.reference.get("repo"):
        raise bad("reference must be a mapping with repo (and file, commit)")
    sub = card.submission
    if sub is not None and (not isinstance(sub, dict) or sub.get("format") not in SUBMISSION_FORMATS):
        raise bad(f"submission.format must be one of {', '.join(SUBMISSION_FORMATS)}")
    if card.ground_truth == "server" and not sub:
        raise bad("a server-scored split (ground_truth: server) needs submission.format")
    if card.generate is not None and (not isinstance(card.generate, str) or ":" not in card.generate):
        raise bad("generate must be a 'package.module:function' reference")
    from refbench.protocols import protocol_cards

    protocols = protocol_cards()
    proto = protocols.get(card.protocol) if isinstance(card.protocol, str) else None
    if proto is None:
        raise bad(f"protocol {card.protocol!r} has no protocol card{suggest(str(card.protocol), protocols)}")
    if proto.task != card.task:
        raise bad(f"protocol {card.protocol} scores task {proto.task}, not {card.task}")


def _dataset_entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    try:
        return list(entry_points(group=DATASET_ENTRY_POINTS))
    except TypeError:  # pragma: no cover - Python < 3.10 API
        return list(entry_points().get(DATASET_ENTRY_POINTS, ()))


def _entry_point_card(ep: Any) -> DatasetCard:
    """The card an entry point of ``refbench.datasets`` names: a mapping, or the path of a YAML card."""
    dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
    where = f"entry point {ep.name} = {ep.value} ({dist})"
    try:
        obj = ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin is named, never a traceback
        raise CardError(f"{where}: cannot load it ({type(exc).__name__}: {exc})") from exc
    origin = f"entry point ({dist})"
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        card = _read_card(path, origin)
        if card.name != ep.name:
            raise CardError(f"{where}: {path} holds card {card.name!r}, not {ep.name!r}")
        return card
    if not isinstance(obj, dict):
        raise CardError(f"{where}: expected the card as a mapping or the path of a YAML card, got {type(obj).__name__}")
    data = dict(obj)
    if data.setdefault("name", ep.name) != ep.name:
        raise CardError(f"{where}: the card's name {data['name']!r} differs from the entry point's")
    return _card_from_mapping(data, where, None, origin)


@lru_cache(maxsize=None)
def _dataset_cards(env: str) -> dict[str, DatasetCard]:
    cards: dict[str, DatasetCard] = {}
    for d in card_dirs("datasets"):
        for path in sorted(d.glob("*.yaml")):
            if path.stem not in cards:  # the wheel's copy and the checkout's are the same card
                cards[path.stem] = _read_card(path)
    for d in user_card_dirs("datasets", env):
        for path in sorted(d.glob("*.yaml")):
            card = _read_card(path, f"user folder {d.parent}")
            if card.name in cards:
                raise shadow_error(path, card.name, "dataset", cards[card.name].path or cards[card.name].origin)
            cards[card.name] = card
    seen: dict[str, str] = {}
    for ep in _dataset_entry_points():
        if seen.get(ep.name) == ep.value:
            continue  # one distribution seen twice on the path
        seen[ep.name] = ep.value
        card = _entry_point_card(ep)
        if card.name in cards:
            raise shadow_error(f"entry point {ep.name} = {ep.value}", card.name, "dataset",
                               cards[card.name].path or cards[card.name].origin)
        cards[card.name] = card
    return cards


def dataset_cards() -> dict[str, DatasetCard]:
    """All dataset cards by name: the built-in ones, then those of ``$REFBENCH_CARDS`` and of the
    ``refbench.datasets`` entry points (module doc). Cached per value of ``$REFBENCH_CARDS``."""
    return _dataset_cards(os.environ.get(CARDS_ENV, ""))


dataset_cards.cache_clear = _dataset_cards.cache_clear  # type: ignore[attr-defined]


def suggest(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=4, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else ""


def dataset_card(name: str) -> DatasetCard:
    cards = dataset_cards()
    if name not in cards:
        raise CardError(f"unknown dataset {name!r}{suggest(name, cards)} (refbench datasets list shows all)")
    return cards[name]


def reload_cards() -> None:
    """Forget every card read so far (datasets, suites, adapters, protocols): the next use reads them again."""
    from refbench.adapters.registry import adapter_cards
    from refbench.protocols import protocol_cards
    from refbench.suites import suite_cards

    for fn in (dataset_cards, suite_cards, adapter_cards, protocol_cards):
        fn.cache_clear()


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
