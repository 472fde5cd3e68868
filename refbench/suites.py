"""Suites: named lists of dataset cards, so one ``--dataset`` value runs or scores several splits.

A suite card is ``suites/<name>.yaml`` (``refbench/_cards/suites/`` in a wheel; users add theirs in the
``suites/`` folder of a ``$REFBENCH_CARDS`` folder, :mod:`refbench.cards`)::

    name: refcoco_all
    title: the eight RefCOCO / RefCOCO+ / RefCOCOg splits
    datasets: [refcoco_val, refcoco_testA, ...]     # dataset cards or other suites, in order
    notes: optional text

:func:`expand_datasets` turns a ``--dataset`` value -- names separated by commas, each a dataset card or a
suite -- into the dataset names, suites expanded in place, each dataset once, in the order given. Reading
suites never imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from refbench.cards import (CARDS_ENV, CardError, card_dirs, check_name, dataset_cards, read_card_mapping,
                            shadow_error, suggest, user_card_dirs)

_FIELDS = ("name", "title", "datasets", "notes")


@dataclass(frozen=True)
class SuiteCard:
    name: str
    title: str
    datasets: tuple[str, ...]  # as written: dataset cards or suites
    notes: str | None = None
    path: Path | None = field(default=None, compare=False)
    origin: str = field(default="built-in", compare=False)

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "datasets": list(self.datasets),
                "expanded": expand_datasets(self.name), "notes": self.notes,
                "path": str(self.path) if self.path else None, "origin": self.origin}


def _read(path: Path, origin: str) -> SuiteCard:
    data = read_card_mapping(path, "suite card")
    missing = [k for k in ("name", "title", "datasets") if k not in data]
    if missing:
        raise CardError(f"{path}: suite card misses {', '.join(missing)}")
    extra = set(data) - set(_FIELDS)
    if extra:
        raise CardError(f"{path}: unknown suite card fields {sorted(extra)} (allowed: {', '.join(_FIELDS)})")
    check_name(data["name"], str(path), "suite")
    if data["name"] != path.stem:
        raise CardError(f"{path}: suite name {data['name']!r} differs from its file name")
    names = data["datasets"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise CardError(f"{path}: datasets must be a non-empty list of dataset card or suite names")
    if len(set(names)) != len(names):
        raise CardError(f"{path}: datasets lists a name twice")
    if data.get("notes") is not None and not isinstance(data["notes"], str):
        raise CardError(f"{path}: notes must be text")
    return SuiteCard(name=data["name"], title=str(data["title"]), datasets=tuple(names), notes=data.get("notes"),
                     path=path, origin=origin)


@lru_cache(maxsize=None)
def _suite_cards(env: str) -> dict[str, SuiteCard]:
    suites: dict[str, SuiteCard] = {}
    for d in card_dirs("suites"):
        for path in sorted(d.glob("*.yaml")):
            if path.stem not in suites:  # the wheel's copy and the checkout's are the same card
                suites[path.stem] = _read(path, "built-in")
    for d in user_card_dirs("suites", env):
        for path in sorted(d.glob("*.yaml")):
            card = _read(path, f"user folder {d.parent}")
            if card.name in suites:
                raise shadow_error(path, card.name, "suite", suites[card.name].path)
            suites[card.name] = card
    datasets = dataset_cards()
    for card in suites.values():
        if card.name in datasets:
            raise CardError(f"{card.path}: suite {card.name!r} has the name of a dataset card "
                            f"({datasets[card.name].path or datasets[card.name].origin}); rename it")
        for n in card.datasets:
            if n not in datasets and n not in suites:
                raise CardError(f"{card.path}: {n!r} is neither a dataset card nor a suite"
                                f"{suggest(n, [*datasets, *suites])}")
    for name in suites:  # no suite may contain itself
        _expand_one(name, suites, ())
    return suites


def suite_cards() -> dict[str, SuiteCard]:
    """Every suite by name: the built-in ones, then those of ``$REFBENCH_CARDS`` (which may not replace one).
    Every entry is checked to name a dataset card or a suite, and no suite contains itself."""
    return _suite_cards(os.environ.get(CARDS_ENV, ""))


suite_cards.cache_clear = _suite_cards.cache_clear  # type: ignore[attr-defined]


def _expand_one(name: str, suites: dict[str, SuiteCard], trail: tuple[str, ...]) -> list[str]:
    if name in trail:
        raise CardError(f"{suites[name].path}: suite {name} contains itself ({' -> '.join((*trail, name))})")
    out: list[str] = []
    for n in suites[name].datasets:
        out += _expand_one(n, suites, (*trail, name)) if n in suites else [n]
    return out


def expand_datasets(spec: str | Iterable[str], flag: str = "--dataset") -> list[str]:
    """Dataset card names of a ``--dataset`` value: names separated by commas (or a list of them), each a
    dataset card or a suite; suites expanded in place; each dataset kept once, at its first place. An unknown
    name or an empty value is a CardError (exit 2) naming ``flag`` and close names."""
    items = [spec] if isinstance(spec, str) else list(spec)
    names = [n.strip() for item in items for n in str(item).split(",")]
    if not names or any(not n for n in names):
        raise CardError(f"{flag} {','.join(map(str, items))!r}: expected dataset or suite names separated by "
                        "commas, without empty ones")
    datasets, suites = dataset_cards(), suite_cards()
    out: list[str] = []
    for n in names:
        if n in suites:
            got = _expand_one(n, suites, ())
        elif n in datasets:
            got = [n]
        else:
            raise CardError(f"{flag}: unknown dataset or suite {n!r}{suggest(n, [*datasets, *suites])} "
                            "(refbench datasets list shows both)")
        out += [g for g in got if g not in out]
    return out


def is_multi(spec: str | Iterable[str] | None) -> bool:
    """Whether a ``--dataset`` value names more than one dataset or any suite (its results are then one
    combined table and JSON document, :mod:`refbench.combined`)."""
    if spec is None:
        return False
    items = [spec] if isinstance(spec, str) else list(spec)
    names = [n.strip() for item in items for n in str(item).split(",") if n.strip()]
    return len(names) > 1 or any(n in suite_cards() for n in names)


def suite_card(name: str) -> SuiteCard:
    suites = suite_cards()
    if name not in suites:
        raise CardError(f"unknown suite {name!r}{suggest(name, suites)} (refbench datasets list shows all)")
    return suites[name]


__all__ = ["SuiteCard", "expand_datasets", "is_multi", "suite_card", "suite_cards"]
