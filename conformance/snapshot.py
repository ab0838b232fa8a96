"""A target's numbers on a fixed corpus: what `snapshot` records and `compare` recomputes.

The corpus of a spec is its named edge cases (among them the minimal input of every finding
and of every accepted deviation) followed by cases drawn from the spec's strategy under a fixed
seed. A record is one (case, dtype, device, reduction): the target's output (the tested dtype's
values, held exactly in float64), its dtype and shape, the gradient of every differentiable
input (of sum(cotangent * output), the gradient property's weighting), and the float64
reference on the case as the target saw it (rounded to the dtype). A case outside the spec's
domain in a dtype is recorded as such, without values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from conformance.case import DTYPES, Case
from conformance.guard import GuardedTarget, NotApplicable, TargetError, TargetHung, gradient
from conformance.properties.gradient import cotangent
from conformance.runner import _intra_op_threads
from conformance.spec import LossSpec

DEFAULT_SIZE = 16  # drawn cases per spec, besides its edge cases
DEFAULT_SEED = 0

OK, ERROR, OUTSIDE, NOT_APPLICABLE = "ok", "error", "outside", "not applicable"


def corpus(spec: LossSpec, size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED) -> list[Case]:
    """The spec's named edge cases, then `size` cases drawn from its strategy with `seed`
    (the same cases on every run of the same spec under the same Hypothesis)."""
    drawn: list[Case] = []
    strategy = spec.cases()

    @hypothesis_seed(seed)
    @settings(max_examples=max(size, 1), database=None, deadline=None, derandomize=False,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def collect(data: st.DataObject) -> None:
        drawn.append(data.draw(strategy, label="case"))

    if size > 0:
        collect()
    return [*spec.edge_cases, *drawn[:size]]


@dataclass
class Record:
    case: int
    dtype: str
    device: str
    reduction: str | None
    status: str  # OK, ERROR, OUTSIDE, NOT_APPLICABLE
    message: str = ""
    out_dtype: str = ""
    shape: tuple[int, ...] = ()
    value: np.ndarray | None = None
    reference: np.ndarray | None = None
    grads: dict[str, np.ndarray] = field(default_factory=dict)
    grad_error: str = ""

    @property
    def key(self) -> tuple[int, str, str, str | None]:
        return (self.case, self.dtype, self.device, self.reduction)

    # A record's metadata is a row of these columns (the manifest stays small).
    COLUMNS = ("case", "dtype", "device", "reduction", "status", "message", "out_dtype",
               "shape", "grads", "grad_error")

    def meta(self) -> list[Any]:
        return [self.case, self.dtype, self.device, self.reduction, self.status, self.message,
                self.out_dtype, list(self.shape), sorted(self.grads), self.grad_error]

    def arrays(self, index: int) -> dict[str, np.ndarray]:
        """Values in the output's dtype and gradients in the tested dtype (bfloat16 as
        float32: NumPy lacks it), which hold them exactly; the reference in float64."""
        def narrow(array: np.ndarray, dtype: str) -> np.ndarray:
            if not np.issubdtype(array.dtype, np.floating):
                return array
            return array.astype(np.float32 if dtype == "bfloat16" else np.dtype(dtype))

        out = {}
        if self.value is not None:
            out[f"{index}.value"] = narrow(self.value, self.out_dtype)
        if self.reference is not None:
            out[f"{index}.reference"] = self.reference
        out.update({f"{index}.grad.{name}": narrow(g, self.dtype)
                    for name, g in self.grads.items()})
        return out

    @classmethod
    def load(cls, index: int, row: list[Any], arrays: dict[str, np.ndarray],
             where: str) -> Record:
        from conformance.baseline import BaselineError

        if not isinstance(row, list) or len(row) != len(cls.COLUMNS):
            raise BaselineError(f"{where}: record {index} is not a row of {cls.COLUMNS}")
        meta = dict(zip(cls.COLUMNS, row, strict=True))

        def get(key: str) -> np.ndarray | None:
            found = arrays.get(f"{index}.{key}")
            return None if found is None else np.asarray(found, dtype=np.float64) if (
                np.issubdtype(found.dtype, np.floating)) else found

        record = cls(meta["case"], meta["dtype"], meta["device"], meta["reduction"],
                     meta["status"], meta["message"], meta["out_dtype"], tuple(meta["shape"]),
                     get("value"), get("reference"), grad_error=meta["grad_error"])
        for name in meta["grads"]:
            grad = get(f"grad.{name}")
            if grad is None:
                raise BaselineError(f"{where}: the gradient {index}.grad.{name} is missing")
            record.grads[name] = grad
        if record.status == OK and record.value is None:
            raise BaselineError(f"{where}: the value {index}.value is missing")
        return record


def record_case(target: GuardedTarget, spec: LossSpec, case: Case, index: int, dtype: str,
                device: str, reduction: str | None) -> Record:
    """One record: call the target on the rounded case, differentiate, and compute the
    reference. Never raises for anything the target does (a hang does propagate)."""
    torch_dtype = DTYPES[dtype]
    rounded = case.rounded(torch_dtype)
    record = Record(index, dtype, device, reduction, OK)
    why = spec.outside_domain(rounded, torch_dtype)
    if why is not None:
        record.status, record.message = OUTSIDE, why
        return record
    if target.reductions is not None and reduction not in target.reductions:
        record.status = NOT_APPLICABLE
        record.message = f"the target has no reduction {reduction!r}"
        return record
    names = spec.differentiable_inputs(case)
    kwargs = {} if reduction is None else {"reduction": reduction}
    try:
        out, args, _ = target(rounded, torch_dtype, device, grad_inputs=tuple(names), **kwargs)
    except NotApplicable as exc:
        record.status, record.message = NOT_APPLICABLE, str(exc)
        return record
    except TargetError as exc:
        record.status, record.message = ERROR, exc.message
        return record
    record.out_dtype = str(out.dtype).removeprefix("torch.")
    record.shape = tuple(out.shape)
    record.value = out.detach().cpu().double().numpy() if out.is_floating_point() else (
        out.detach().cpu().numpy())
    record.reference = np.asarray(spec.call_reference(rounded, reduction))
    if out.is_floating_point() and out.requires_grad:
        weights = torch.as_tensor(cotangent(tuple(out.shape)), dtype=out.dtype,
                                  device=out.device)
        position = list(case.inputs)
        try:
            for name in names:
                grad = gradient(out * weights, args[position.index(name)], target.timeout)
                record.grads[name] = grad.detach().cpu().double().numpy()
        except TargetError as exc:
            record.grads.clear()
            record.grad_error = exc.message
    return record


def record_target(fn: Callable[..., Any], spec: LossSpec, cases: Sequence[Case],
                  dtypes: Sequence[str], devices: Sequence[str], timeout: float | None = 10.0
                  ) -> list[Record]:
    """Every record of one target on one spec's corpus."""
    target = GuardedTarget(fn, timeout)
    records = []
    wanted = [d for d in dtypes if spec.dtypes is None or d in spec.dtypes]
    with _intra_op_threads(1):
        for index, case in enumerate(cases):
            for dtype in wanted:
                for device in devices:
                    for reduction in spec.calls:
                        try:
                            records.append(record_case(target, spec, case, index, dtype,
                                                       device, reduction))
                        except TargetHung:
                            records.append(Record(index, dtype, device, reduction, ERROR,
                                                  f"the target did not return within"
                                                  f" {timeout}s"))
                            target.hung_on = None  # the next case gets its own chance
    return records
