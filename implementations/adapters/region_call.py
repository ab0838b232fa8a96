"""One canonical call for every library's region losses (soft_dice_loss, soft_jaccard_loss,
tversky_loss).

Each segmentation library's adapter is a function of one `RegionCall`: the arguments of the
spec's own signature, bound with the spec's defaults except those the library defaults itself
(LIBRARY_DEFAULT, left out of the library's call). `region_adapter` gives that function the
spec's signature, parameters in the spec's order, and registers it, so the ten-parameter
signature is written once, by the spec's reference, and never again per library.

Dice and Jaccard are the Tversky index at alpha = beta = 1/2 and at alpha = beta = 1: a call of
either carries those weights, for libraries (optax) that compute all three with one function.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from implementations.adapters import LIBRARY_DEFAULT, adapts

# alpha (weight of false positives) and beta (of false negatives) of each spec's Tversky form.
TVERSKY_WEIGHTS = {"soft_dice_loss": (0.5, 0.5), "soft_jaccard_loss": (1.0, 1.0)}


@dataclass(frozen=True)
class RegionCall:
    """The arguments of one region-loss call, by the spec's names."""

    spec: str
    input: torch.Tensor
    target: torch.Tensor
    activation: Any
    smooth: Any
    include_background: Any
    classes: Any
    per_image: Any
    ignore_index: Any
    reduction: Any
    alpha: Any
    beta: Any
    form: str = "standard"  # soft_dice_loss's only: 'standard' or 'squared'


def region_adapter(spec: str, *, library: str, library_defaults: Sequence[str] = (),
                   reductions: Sequence[str] | None = None,
                   conventions: Mapping[str, Any] | None = None,
                   requires: Sequence[str] | None = None,
                   ) -> Callable[[Callable[[RegionCall], torch.Tensor]],
                                 Callable[..., torch.Tensor]]:
    """`body(call: RegionCall)` as `library`'s target for `spec`, with the spec's signature.

    library_defaults: the spec's parameters the library defaults itself (their default is
    LIBRARY_DEFAULT); every other parameter defaults to the spec's value. reductions and
    conventions: as `adapts` takes them.
    """
    signature = _canonical_signature(spec, library_defaults)

    def wrap(body: Callable[[RegionCall], torch.Tensor]) -> Callable[..., torch.Tensor]:
        def call(*args: Any, **kwargs: Any) -> torch.Tensor:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            given = dict(bound.arguments)
            alpha, beta = TVERSKY_WEIGHTS.get(spec, (None, None))
            given.setdefault("alpha", alpha)
            given.setdefault("beta", beta)
            return body(RegionCall(spec=spec, **given))

        call.__signature__ = signature  # type: ignore[attr-defined]
        call.__name__ = call.__qualname__ = spec
        call.__module__ = body.__module__
        call.__doc__ = f"{library}'s {spec}, under the spec's call."
        return adapts(spec, library=library, reductions=reductions, conventions=conventions,
                      requires=requires)(call)

    return wrap


def _canonical_signature(spec: str, library_defaults: Sequence[str]) -> inspect.Signature:
    """The spec reference's parameters without its declared variants (those are conventions
    a target follows, not arguments it takes), with the library's defaults where it has them."""
    from conformance.catalog import get_spec

    declared = get_spec(spec)
    variants = {v.name for v in declared.variants}
    parameters = [p for p in inspect.signature(declared.reference).parameters.values()
                  if p.name not in variants]
    names = {p.name for p in parameters}
    unknown = set(library_defaults) - names
    if unknown:
        raise TypeError(f"{spec} has no parameter(s) {sorted(unknown)}")
    # The reference's annotations are NumPy's: an adapter takes and returns tensors.
    return inspect.Signature(
        [p.replace(annotation=inspect.Parameter.empty,
                   default=LIBRARY_DEFAULT if p.name in library_defaults else p.default)
         for p in parameters], return_annotation=torch.Tensor)
