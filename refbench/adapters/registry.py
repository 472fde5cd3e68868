"""Adapter cards and the adapter registry. Listing reads YAML and entry-point metadata; it never imports torch.

An adapter card (``adapters/<name>.yaml``, shipped in the wheel as ``refbench/_cards/adapters``) names the code
(a lazy ``"module:Class"`` reference), the tasks, the options with their official defaults, the extra to
install, the checkpoint and its pinned revision, and reported numbers. Third-party packages add adapters
through the entry-point group ``refbench.adapters`` (``name = "package.module:Class"``); such a class may carry
its card as a ``CARD`` dict with the same fields. Users add adapter cards (YAML, read and checked as the built-in
ones) in the ``adapters/`` folder of a ``$REFBENCH_CARDS`` folder (:func:`refbench.cards.user_card_dirs`). Neither
may take a name another card already has: that is refused, naming both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from refbench.adapters.options import OptionSpec, not_output, resolve, spec_from_card
from refbench.cards import (CARDS_ENV, CardError, card_dirs, check_name, import_ref, read_card_mapping,
                            shadow_error, suggest, user_card_dirs)
from refbench.envs import EnvSpec, env_spec_from_card

ENTRY_POINT_GROUP = "refbench.adapters"
_TASKS = ("refvos", "tsg", "res", "vos")
_REQUIRED = ("name", "title", "code", "tasks")
_FIELDS = ("name", "title", "code", "tasks", "needs_pixels", "options", "extra", "checkpoint", "reported", "notes",
           "status", "trust_remote_code", "weights", "environment", "alias_of")
_WEIGHT_KEYS = ("hub", "modelscope", "revision", "revision_note", "base_model", "remote_code")


@dataclass(frozen=True)
class AdapterCard:
    name: str
    title: str
    code: str
    tasks: tuple[str, ...]
    needs_pixels: bool = True
    options: dict[str, Any] = field(default_factory=dict)  # name -> default
    specs: dict[str, OptionSpec] = field(default_factory=dict, compare=False)  # name -> type, range, choices
    extra: str | None = None
    checkpoint: dict[str, Any] | None = None
    reported: dict[str, Any] | None = None
    notes: str | None = None
    path: Path | None = field(default=None, compare=False)
    origin: str = "card"  # "card" or "entry point <dist>"
    status: str | None = None  # what has been verified (e.g. "offline stub tests only; no GPU run yet")
    trust_remote_code: bool = False  # the checkpoint's own Python code runs (transformers' trust_remote_code)
    weights: dict[str, Any] | None = None  # hub, modelscope, revision (null = unknown), revision_note, base_model
    environment: EnvSpec | None = None  # the Python packages it needs (refbench.envs)
    aliases: tuple[str, ...] = ()  # other names of this card (cards with ``alias_of: <this>``)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "code": self.code, "tasks": list(self.tasks),
            "needs_pixels": self.needs_pixels, "options": dict(self.options),
            "option_specs": {k: s.to_dict() for k, s in self.specs.items()}, "extra": self.extra,
            "checkpoint": self.checkpoint, "origin": self.origin,
            "path": str(self.path) if self.path else None, "status": self.status,
            "trust_remote_code": self.trust_remote_code, "weights": self.weights,
            "environment": self.environment.to_dict() if self.environment else None,
            "aliases": list(self.aliases),
        }


def _card_from_mapping(data: Mapping[str, Any], where: str, path: Path | None = None, origin: str = "card") -> AdapterCard:
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise CardError(f"{where}: adapter card misses {', '.join(missing)}")
    extra = set(data) - set(_FIELDS)
    if extra:
        raise CardError(f"{where}: unknown adapter card fields {sorted(extra)}")
    tasks = data["tasks"]
    if isinstance(tasks, str):
        tasks = [tasks]
    bad = [t for t in tasks if t not in _TASKS]
    if bad or not tasks:
        raise CardError(f"{where}: tasks must be a non-empty list of {', '.join(_TASKS)}, got {tasks!r}")
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise CardError(f"{where}: options must be a mapping of name -> spec (or default)")
    specs = {str(k): spec_from_card(str(k), v, where) for k, v in options.items()}
    trust = data.get("trust_remote_code", False)
    if not isinstance(trust, bool):
        raise CardError(f"{where}: trust_remote_code must be true or false")
    return AdapterCard(
        name=str(data["name"]), title=str(data["title"]), code=str(data["code"]), tasks=tuple(tasks),
        needs_pixels=bool(data.get("needs_pixels", True)), options={k: s.default for k, s in specs.items()},
        specs=specs, extra=data.get("extra"),
        checkpoint=data.get("checkpoint"), reported=data.get("reported"), notes=data.get("notes"),
        path=path, origin=origin, status=_opt_str(data, "status", where), trust_remote_code=trust,
        weights=_weights(data.get("weights"), where),
        environment=env_spec_from_card(data["environment"], where) if data.get("environment") else None,
    )


def _opt_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    v = data.get(key)
    if v is not None and not isinstance(v, str):
        raise CardError(f"{where}: {key} must be text")
    return v


def _weights(raw: Any, where: str) -> dict[str, Any] | None:
    """The ``weights`` block: where the checkpoint is published and the pinned revision (null = unknown)."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise CardError(f"{where}: weights must be a mapping ({', '.join(_WEIGHT_KEYS)})")
    bad = set(raw) - set(_WEIGHT_KEYS)
    if bad:
        raise CardError(f"{where}: weights: unknown keys {sorted(bad)} (allowed: {', '.join(_WEIGHT_KEYS)})")
    for key in _WEIGHT_KEYS:
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise CardError(f"{where}: weights.{key} must be text or null")
    if not raw.get("hub") and not raw.get("modelscope"):
        raise CardError(f"{where}: weights needs a hub or a modelscope id")
    rev = raw.get("revision")
    if rev is not None and not (len(rev) == 40 and all(c in "0123456789abcdef" for c in rev)):
        raise CardError(f"{where}: weights.revision must be a 40-hex commit sha or null (unknown), got {rev!r}")
    return dict(raw)


def _read_card(path: Path, origin: str = "card") -> AdapterCard:
    data = read_card_mapping(path, "adapter card")
    check_name(data.get("name"), str(path), "adapter")
    if "alias_of" in data:
        extra = set(data) - {"name", "alias_of", "title"}
        if extra:
            raise CardError(f"{path}: an alias card holds only name, alias_of and title, not {sorted(extra)}")
        card = AdapterCard(name=str(data.get("name")), title=str(data.get("title") or ""), code="", tasks=(),
                           path=path, origin=f"alias of {data['alias_of']}")
    else:
        card = _card_from_mapping(data, str(path), path, origin)
    if card.name != path.stem:
        raise CardError(f"{path}: card name {card.name!r} differs from its file name")
    return card


def _alias_target(card: AdapterCard) -> str | None:
    return card.origin[len("alias of "):] if card.origin.startswith("alias of ") else None


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    try:
        return list(entry_points(group=ENTRY_POINT_GROUP))
    except TypeError:  # pragma: no cover - Python < 3.10 API
        return list(entry_points().get(ENTRY_POINT_GROUP, ()))


def _where(card: AdapterCard) -> str:
    return str(card.path) if card.path else card.origin


@lru_cache(maxsize=None)
def _adapter_cards(env: str) -> dict[str, AdapterCard]:
    cards: dict[str, AdapterCard] = {}
    for d in card_dirs("adapters"):
        for path in sorted(d.glob("*.yaml")):
            if path.stem not in cards:  # the wheel's copy and the checkout's are the same card
                cards[path.stem] = _read_card(path)
    for d in user_card_dirs("adapters", env):
        for path in sorted(d.glob("*.yaml")):
            card = _read_card(path, f"user folder {d.parent}")
            if card.name in cards:
                raise shadow_error(path, card.name, "adapter", _where(cards[card.name]))
            cards[card.name] = card
    seen: dict[str, str] = {}
    for ep in _entry_points():
        if seen.get(ep.name) == ep.value:
            continue  # one distribution seen twice on the path
        seen[ep.name] = ep.value
        dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
        if ep.name in cards:
            raise shadow_error(f"entry point {ep.name} = {ep.value} ({dist})", ep.name, "adapter",
                               _where(cards[ep.name]))
        cards[ep.name] = AdapterCard(name=ep.name, title=f"third-party adapter from {dist}", code=ep.value,
                                     tasks=(), origin=f"entry point ({dist})")
    # aliases: checked, and listed on their target
    import dataclasses

    for name, card in list(cards.items()):
        target = _alias_target(card)
        if target is None:
            continue
        real = cards.get(target)
        if real is None or _alias_target(real) is not None:
            raise CardError(f"{card.path}: alias_of {target!r} is not a model card")
        cards[target] = dataclasses.replace(real, aliases=tuple(sorted({*real.aliases, name})))
    return cards


def adapter_cards() -> dict[str, AdapterCard]:
    """Every adapter by name: the built-in cards, then those of ``$REFBENCH_CARDS`` and the entry points (none
    may replace another). Cached per value of ``$REFBENCH_CARDS``."""
    return _adapter_cards(os.environ.get(CARDS_ENV, ""))


adapter_cards.cache_clear = _adapter_cards.cache_clear  # type: ignore[attr-defined]


def aliases() -> dict[str, str]:
    """``{alias: card name}`` (e.g. ``momentseg`` -> ``momentseg-3b``)."""
    return {n: t for n, c in adapter_cards().items() if (t := _alias_target(c)) is not None}


def adapter_card(name: str) -> AdapterCard:
    cards = adapter_cards()
    if name not in cards:
        raise CardError(f"unknown model {name!r}{suggest(name, cards)} (refbench models list shows all)")
    card = cards[name]
    target = _alias_target(card)
    if target is not None:
        card = cards[target]
    if card.origin != "card" and not card.tasks:
        # An entry point: its class may carry the card; importing it is the only way to learn its tasks.
        cls = import_ref(card.code)
        data = dict(getattr(cls, "CARD", None) or {})
        data.setdefault("name", name)
        data.setdefault("title", card.title)
        data["code"] = card.code
        data.setdefault("tasks", sorted(getattr(cls, "tasks", ())) or ["refvos"])
        data.setdefault("needs_pixels", bool(getattr(cls, "needs_pixels", True)))
        card = _card_from_mapping(data, f"entry point {name} = {card.code}", origin=card.origin)
    return card


# ----------------------------------------------------------------------------------------------
# Options
# ----------------------------------------------------------------------------------------------


def parse_model_args(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["key=value", ...]`` -> dict; values are read as YAML scalars (``0.5``, ``true``, ``null``, text)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--model-arg {pair!r}: expected key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except (yaml.YAMLError, ValueError, OverflowError, RecursionError):  # e.g. an int of 5000 digits
            value = raw
        if isinstance(value, (dict, list)):
            value = raw  # keep structured-looking text as given
        out[key] = value
    return out


def resolve_options(card: AdapterCard, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Card defaults with ``overrides`` applied; an unknown key, or a value outside the option's type, range
    or choices, is a ValueError naming the option and what it takes (:mod:`refbench.adapters.options`)."""
    return resolve(card.name, card.specs, overrides)


def load_adapter(name: str, overrides: Mapping[str, Any] | None = None):
    """Instantiate adapter ``name`` with its card's options overridden by ``overrides``.
    Returns ``(adapter, card)``; imports the adapter's module (and whatever it needs) only now."""
    card = adapter_card(name)
    options = resolve_options(card, overrides or {})
    python = options.pop("python", None)
    ignore_pins = bool(options.pop("ignore_pins", False))
    if python is None and card.environment is not None and not ignore_pins:
        # in this interpreter when it has the card's pinned packages, else in the card's environment (refbench.envs)
        from refbench.envs import worker_python

        python = worker_python(card)
    if python:  # run out of process, under another interpreter (refbench.adapters.worker)
        from refbench.adapters.worker import WorkerAdapter

        worker = WorkerAdapter(card.code, str(python), card.name, **options)
        worker.not_output_options = worker.not_output_options | not_output(card.specs)
        return worker, card
    cls = import_ref(card.code)
    adapter = cls(**options)
    adapter.not_output_options = adapter.not_output_options | not_output(card.specs)
    adapter.card_name = card.name
    if not getattr(adapter, "name", None):
        adapter.name = card.name
    return adapter, card


def list_models() -> list[AdapterCard]:
    """Every model card (aliases are on their target's ``aliases``)."""
    cards = adapter_cards()
    return [cards[k] for k in sorted(cards) if _alias_target(cards[k]) is None]


def default_model() -> str:
    return os.environ.get("REFBENCH_MODEL", "prior")


__all__ = [
    "ENTRY_POINT_GROUP",
    "AdapterCard",
    "adapter_card",
    "adapter_cards",
    "aliases",
    "list_models",
    "load_adapter",
    "parse_model_args",
    "resolve_options",
]
