"""Conventions as declared variants of a spec.

Real implementations of one loss often differ by a convention, not by a bug: where the
smoothing term goes, which form of a score a library writes. A spec declares each such choice
as a `Variant`: a keyword parameter of its reference, with the spec's own (canonical) value and
every value real implementations use, each with what it computes. The canonical spec is one
point of that space.

A target is checked against a variant by naming it:

    conformance.check(fn, "soft_dice_loss", conventions={"smoothing": "tversky"})
    python -m conformance check mod:fn --spec soft_dice_loss --convention smoothing=tversky

or, for an adapter of a library that documents its convention, by declaring it on the function
(`fn.conformance_conventions = {"smoothing": "tversky"}`), so that the matrix reports it as a
convention instead of adapter code absorbing it. Everything else about the target is still
checked against the variant's reference, and its report names the conventions it followed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ConventionError(ValueError):
    """A convention the spec does not declare, or a value it does not know."""


@dataclass(frozen=True)
class Variant:
    """One convention: `name` is a keyword parameter of the spec's reference, `canonical` the
    spec's value of it, `choices` every value real implementations use -> what it computes
    (and who uses it)."""

    name: str
    canonical: Any
    choices: Mapping[Any, str]
    # Values whose reference is infinite or NaN where the formula says so (no clamp, 0 / 0):
    # a target following one owes those values too, as a spec's declared NaNs are owed.
    nonfinite: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.canonical not in self.choices:
            raise ValueError(f"variant {self.name!r}: the canonical value {self.canonical!r}"
                             " must be one of its choices")
        if any(v not in self.choices or v == self.canonical for v in self.nonfinite):
            raise ValueError(f"variant {self.name!r}: nonfinite names values other than the"
                             " canonical one among its choices")

    def describe(self) -> list[str]:
        return [f"{self.name}={value!r}{' (the spec)' if value == self.canonical else ''}:"
                f" {meaning}" for value, meaning in self.choices.items()]


def chosen(spec_name: str, variants: tuple[Variant, ...],
           conventions: Mapping[str, Any]) -> dict[str, Any]:
    """The conventions that differ from the spec's own, checked against its declarations."""
    by_name = {v.name: v for v in variants}
    out: dict[str, Any] = {}
    for name, value in conventions.items():
        variant = by_name.get(name)
        if variant is None:
            known = ", ".join(by_name) or "none"
            raise ConventionError(f"spec {spec_name!r} declares no convention {name!r}"
                                  f" (it declares: {known}); `python -m conformance show"
                                  f" {spec_name}` lists them")
        if value not in variant.choices:
            raise ConventionError(f"spec {spec_name!r}: convention {name!r} has no value"
                                  f" {value!r}; choose from"
                                  f" {', '.join(map(repr, variant.choices))}")
        if value != variant.canonical:
            out[name] = value
    return out


def declared_by(fn: Any) -> dict[str, Any]:
    """The conventions a target declares for itself (`fn.conformance_conventions`)."""
    return dict(getattr(fn, "conformance_conventions", None) or {})


def parse(text: str) -> tuple[str, Any]:
    """'name=value' from a command line: the value as a number or boolean where it reads as
    one, else as the string written."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise ConventionError(f"a convention is written NAME=VALUE, not {text!r}")
    raw = raw.strip()
    value: Any = {"true": True, "false": False, "none": None}.get(raw.lower(), raw)
    if value is raw:
        for kind in (int, float):
            try:
                value = kind(raw)
                break
            except ValueError:
                continue
    return name.strip(), value
