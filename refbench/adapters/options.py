"""Adapter options: each declared on its card with a type, a range or choices, and whether it changes outputs.

A card's ``options`` maps each name to its spec::

    threshold: {default: auto, type: float, min: 0, max: 1, choices: [auto], doc: "level in [0, 1] or auto"}
    objective: {default: mode, choices: [mode, miou]}
    sleep:     {default: 0.0, type: float, min: 0, output: false}

``type`` is one of ``int``, ``float``, ``bool``, ``str``, ``path``; ``choices`` lists literal values accepted as they
are (with no ``type``, only they are accepted); ``min`` / ``max`` bound numbers (inclusive); ``nullable`` admits
``null`` (implied by a ``null`` default); ``output: false`` keeps the option out of the adapter's fingerprint
(it cannot change predictions: batch size, sleep, a worker's interpreter). A bare value (``grid: 64``) is a spec
with that default and the default's type, for third-party ``CARD`` dicts written before specs existed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from refbench.cards import CardError, suggest

TYPES = ("int", "float", "bool", "str", "path")
_SPEC_KEYS = {"default", "type", "min", "max", "choices", "nullable", "doc", "output"}
#: the largest integer an option may take: what numpy and torch index with
INT_LIMIT = 2**63 - 1


@dataclass(frozen=True)
class OptionSpec:
    """One option of an adapter card (module doc)."""

    name: str
    default: Any
    type: str | None = None
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    doc: str = ""
    output: bool = True

    def allowed(self) -> str:
        """What the option accepts, in words: ``float in [0, 1], or auto``."""
        parts = []
        if self.type is not None:
            rng = ""
            if self.type in ("int", "float") and (self.min is not None or self.max is not None):
                lo = "-inf" if self.min is None else _num(self.min)
                hi = "inf" if self.max is None else _num(self.max)
                rng = f" in [{lo}, {hi}]"
            parts.append(f"{self.type}{rng}")
        if self.choices:
            parts.append(" | ".join(str(c) for c in self.choices))
        if self.nullable:
            parts.append("null")
        return ", or ".join(parts) if parts else "any"

    def check(self, value: Any, where: str) -> Any:
        """``value`` coerced to the option's type, or a ValueError naming ``--model-arg name`` and what it takes."""
        if value is None:
            if self.nullable:
                return None
            raise ValueError(f"{where}: --model-arg {self.name}: null is not allowed; it takes {self.allowed()}")
        for c in self.choices:
            if value == c and type(value) is type(c):
                return value
        if self.type is None:
            if not self.choices:  # a bare null default: any value (third-party cards without specs)
                return value
            raise ValueError(f"{where}: --model-arg {self.name}={_show(value)} is not one of {self.allowed()}")
        got = _coerce(self.type, value)
        if got is _BAD:
            raise ValueError(f"{where}: --model-arg {self.name}={_show(value)} must be {self.allowed()}")
        if self.type in ("int", "float"):
            if (self.min is not None and got < self.min) or (self.max is not None and got > self.max):
                raise ValueError(f"{where}: --model-arg {self.name}={_show(value)} is out of range; it takes {self.allowed()}")
        return got

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"default": self.default}
        for key in ("type", "min", "max", "doc"):
            if getattr(self, key) not in (None, ""):
                out[key] = getattr(self, key)
        if self.choices:
            out["choices"] = list(self.choices)
        if self.nullable:
            out["nullable"] = True
        if not self.output:
            out["output"] = False
        return out


_BAD = object()


def _show(value: Any) -> str:
    """``repr(value)``, cut to 40 characters (a 5000-digit value stays one readable line)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)} characters)"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _coerce(kind: str, value: Any) -> Any:
    if kind == "bool":
        return value if isinstance(value, bool) else _BAD
    if isinstance(value, bool):
        return _BAD if kind in ("int", "float") else str(value).lower()
    if kind == "int":
        if isinstance(value, float) and value.is_integer() and abs(value) <= INT_LIMIT:
            value = int(value)
        if not isinstance(value, int) or abs(value) > INT_LIMIT:
            return _BAD
        return value
    if kind == "float":
        if isinstance(value, int):
            value = float(value) if abs(value) <= 2**53 else _BAD
        if not isinstance(value, float) or not math.isfinite(value):
            return _BAD
        return value
    if kind in ("str", "path"):
        if isinstance(value, (dict, list)):
            return _BAD
        return str(value)
    return _BAD  # pragma: no cover - kinds are validated when the card is read


def _infer_type(default: Any) -> str | None:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    return None


def spec_from_card(name: str, raw: Any, where: str) -> OptionSpec:
    """The :class:`OptionSpec` of one ``options`` entry; a CardError naming the card when it is malformed or its
    default breaks its own spec."""
    if not isinstance(raw, Mapping) or "default" not in raw:
        # a bare default: its own type; null means "any value, or null"
        return OptionSpec(name=name, default=raw, type=_infer_type(raw), nullable=raw is None)
    bad = set(raw) - _SPEC_KEYS
    if bad:
        raise CardError(f"{where}: option {name}: unknown spec keys {sorted(bad)} (allowed: {sorted(_SPEC_KEYS)})")
    kind = raw.get("type")
    choices = raw.get("choices") or ()
    if not isinstance(choices, (list, tuple)):
        raise CardError(f"{where}: option {name}: choices must be a list")
    if kind is None and not choices:
        kind = _infer_type(raw["default"])
    if kind is not None and kind not in TYPES:
        raise CardError(f"{where}: option {name}: type must be one of {', '.join(TYPES)}, got {kind!r}")
    for key in ("min", "max"):
        v = raw.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise CardError(f"{where}: option {name}: {key} must be a number")
    spec = OptionSpec(name=name, default=raw["default"], type=kind, min=raw.get("min"), max=raw.get("max"),
                      choices=tuple(choices), nullable=bool(raw.get("nullable", raw["default"] is None)),
                      doc=str(raw.get("doc") or ""), output=bool(raw.get("output", True)))
    try:
        spec.check(spec.default, where)
    except ValueError as exc:
        raise CardError(f"{where}: option {name}: the default {spec.default!r} breaks its own spec "
                        f"({spec.allowed()})") from exc
    return spec


#: options every adapter takes, whatever its card says
UNIVERSAL = {
    "batch_size": OptionSpec("batch_size", 1, "int", min=1, max=1_000_000, doc="requests per batch", output=False),
    "python": OptionSpec("python", None, "path", nullable=True,
                         doc="run the adapter in a worker process under this interpreter (default: this one when "
                             "it has the card's pinned packages, else the card's environment; refbench env)",
                         output=False),
    "ignore_pins": OptionSpec("ignore_pins", False, "bool",
                              doc="run in this interpreter even when its packages differ from the card's pins "
                                  "(unsupported; the versions are in the fingerprint and run.json)", output=False),
}


def resolve(card_name: str, specs: Mapping[str, OptionSpec], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Card defaults with ``overrides`` applied, each checked against its spec (module doc); an unknown option
    is a ValueError with a did-you-mean."""
    opts = {k: s.default for k, s in specs.items()}
    where = f"model {card_name}"
    for key, value in overrides.items():
        spec = specs.get(key) or UNIVERSAL.get(key)
        if spec is None:
            raise ValueError(f"{where}: unknown option {key!r}{suggest(key, specs)}; options: "
                             f"{', '.join(sorted(specs)) or '(none)'}")
        opts[key] = spec.check(value, where)
    return opts


def not_output(specs: Mapping[str, OptionSpec]) -> frozenset[str]:
    """Names of the options that cannot change predictions (kept out of the fingerprint)."""
    return frozenset(k for k, s in {**UNIVERSAL, **specs}.items() if not s.output)
