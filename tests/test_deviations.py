"""The deviations file: accepted failures, unexpected passes, entries that match nothing."""

from __future__ import annotations

from dataclasses import replace

import mutants
import pytest
import torch.nn.functional as F
from mutants import bce_clamped_probabilities

from conformance import check, deviations
from conformance.report import DEVIATION

BCE = "binary_cross_entropy"
TARGET = "mutants:bce_clamped_probabilities"


def _file(tmp_path, body: str):
    path = tmp_path / "deviations.toml"
    path.write_text(body)
    return deviations.load(path)


ENTRY = f"""
[[deviation]]
implementation = "{TARGET}"
spec = "{BCE}"
property = "matches_reference"
dtypes = ["float64"]
kind = "defect"
reason = "clamps p to [1e-7, 1 - 1e-7]"
"""


def test_an_accepted_failure_is_a_known_deviation_and_the_rest_still_fail(tmp_path):
    entries = _file(tmp_path, ENTRY)
    report = check(bce_clamped_probabilities, BCE, properties=["matches_reference"],
                   dtypes=("float64", "float32"), target_path=TARGET)
    outcome = deviations.apply([report], entries)
    statuses = {r.dtype: r.status for r in report.results}
    assert statuses["float64"] == DEVIATION
    assert statuses["float32"] == "failed"  # outside the entry's scope: still a failure
    assert not report.ok
    assert len(outcome.known) == 1 and "clamps p" in report.results[0].deviation
    assert "known deviation" in str(report)


def test_a_deviation_that_no_longer_fails_is_an_unexpected_pass(tmp_path):
    entries = _file(tmp_path, ENTRY.replace(TARGET, "torch.nn.functional:binary_cross_entropy"))
    report = check(F.binary_cross_entropy, BCE, properties=["matches_reference"],
                   dtypes=("float64",))
    outcome = deviations.apply([report], entries)
    assert report.ok
    assert len(outcome.unexpected_passes) == 1
    assert "unexpected pass" in outcome.lines()[0]


def test_an_entry_that_matches_nothing_is_reported(tmp_path):
    entries = _file(tmp_path, ENTRY.replace(f'spec = "{BCE}"', 'spec = "kl_div"'))
    report = check(bce_clamped_probabilities, BCE, properties=["matches_reference"],
                   dtypes=("float64",), target_path=TARGET)
    outcome = deviations.apply([report], entries)
    assert not report.ok
    assert [d.specs for d in outcome.unmatched] == [("kl_div",)]
    assert "matched nothing" in outcome.lines()[0]


@pytest.mark.parametrize(("body", "message"), [
    ("[[deviation]]\nspec = 'x'\n", "missing implementation"),
    (ENTRY.replace('kind = "defect"', 'kind = "bug"'), "kind must be one of"),
    (ENTRY + "colour = 'red'\n", "unknown key"),
    ("[[deviation]\n", "not valid TOML"),
])
def test_a_malformed_file_is_named_with_its_problem(tmp_path, body, message):
    with pytest.raises(deviations.DeviationFileError, match=message):
        _file(tmp_path, body)


def test_the_projects_deviations_file_loads():
    entries = deviations.builtin()
    assert entries and all(e.reason for e in entries)


def test_an_entry_may_list_specs_and_covers_those_only(tmp_path):
    (entry,) = _file(tmp_path, ENTRY.replace(f'spec = "{BCE}"', f'spec = ["kl_div", "{BCE}"]'))
    assert entry.specs == ("kl_div", BCE) and not entry.exact()
    report = check(bce_clamped_probabilities, BCE, properties=["matches_reference"],
                   dtypes=("float64",), target_path=TARGET)
    assert entry.covers(TARGET, report.results[0])
    other = check(bce_clamped_probabilities, "binary_cross_entropy_with_logits",
                  properties=["matches_reference"], dtypes=("float64",), target_path=TARGET)
    assert not entry.covers(TARGET, other.results[0])


@pytest.mark.parametrize("kinds, finding", [
    (("defect",), "1 known defect"),
    (("convention",), "conforms up to 1 documented convention"),
    (("defect", "convention"), "1 known defect and 1 documented convention"),
])
def test_a_report_passing_only_by_accepted_deviations_says_so(tmp_path, kinds, finding):
    # Each entry covers one dtype, so two entries are two findings; every cell is accepted.
    body = "".join(ENTRY.replace('["float64"]', f'["{dtype}"]').replace('"defect"', f'"{kind}"')
                   for kind, dtype in zip(kinds, ("float64", "float32"), strict=False))
    dtypes = ("float64", "float32")[:len(kinds)]
    report = check(bce_clamped_probabilities, BCE, properties=["matches_reference"],
                   dtypes=dtypes, target_path=TARGET)
    deviations.apply([report], _file(tmp_path, body))
    assert report.ok and report.finding == finding
    assert str(report).splitlines()[0].endswith(f": CONFORMS ({finding})")
    assert report.to_dict()["finding"] == finding


def test_a_clean_pass_is_plainly_conforming():
    report = check(F.binary_cross_entropy, BCE, properties=["matches_reference"],
                   dtypes=("float64",))
    assert report.finding == "conforms" and str(report).splitlines()[0].endswith(": CONFORMS")


CE_TARGET = "mutants:ce_mean_over_every_target"
ALL_IGNORED = f"""
[[deviation]]
implementation = "{CE_TARGET}"
spec = "cross_entropy"
property = "matches_reference"
when = "every_target_ignored"
kind = "convention"
reason = "a mean over no target is 0"
"""


def _ce_report():
    return check(mutants.ce_mean_over_every_target, "cross_entropy",
                 properties=["matches_reference"], dtypes=("float64",), profile="ci",
                 target_path=CE_TARGET)


def test_a_cell_reports_failures_of_other_kinds_after_the_first():
    (result,) = _ce_report().results
    messages = [f.message for f in (result.failure, *result.more_failures)]
    assert len(messages) >= 2
    assert "expects NaN" in messages[0] and "expects NaN" not in messages[1]


def test_an_entry_scoped_to_a_regime_leaves_the_rest_of_the_cell_open(tmp_path):
    report = _ce_report()
    deviations.apply([report], _file(tmp_path, ALL_IGNORED))
    (result,) = report.results
    assert result.status == "failed" and not report.ok
    # The accepted regime's failure is gone; the wrong denominator leads.
    assert "expects NaN" not in result.failure.message
    assert all((f.case.inputs["target"] != -100).any()
               for f in (result.failure, *result.more_failures))


def test_entries_explaining_every_failure_of_a_cell_accept_it(tmp_path):
    report = _ce_report()
    anywhere = ALL_IGNORED.replace('when = "every_target_ignored"\n', "").replace(
        "a mean over no target is 0", "divides by every target")
    deviations.apply([report], _file(tmp_path, ALL_IGNORED + anywhere))
    assert report.results[0].status == DEVIATION and report.ok


def test_a_regime_the_spec_does_not_declare_is_a_file_error(tmp_path):
    with pytest.raises(deviations.DeviationFileError, match="not a regime of cross_entropy"):
        _file(tmp_path, ALL_IGNORED.replace("every_target_ignored", "one_class"))


SMOOTHING_TARGET = "mutants:ce_smooths_by_default"
SMOOTHED_BY_DEFAULT = f"""
[[deviation]]
implementation = "{SMOOTHING_TARGET}"
spec = "cross_entropy"
property = "matches_reference"
omitted = ["label_smoothing"]
kind = "convention"
reason = "smooths by 0.1 unless told otherwise"
"""


def test_an_entry_scoped_to_an_omitted_parameter_explains_calls_without_it(tmp_path):
    report = check(mutants.ce_smooths_by_default, "cross_entropy",
                   properties=["matches_reference"], dtypes=("float64",), profile="ci",
                   target_path=SMOOTHING_TARGET)
    (result,) = report.results
    failures = [result.failure, *result.more_failures]
    assert failures and all("label_smoothing" not in f.case.params for f in failures)
    (entry,) = _file(tmp_path, SMOOTHED_BY_DEFAULT)
    assert entry.explains(SMOOTHING_TARGET, result, failures[0])
    passed = replace(failures[0], case=failures[0].case.with_params(label_smoothing=0.1))
    assert not entry.explains(SMOOTHING_TARGET, result, passed)
    assert "label_smoothing omitted" in entry.scope() and not entry.exact()
    deviations.apply([report], _file(tmp_path, SMOOTHED_BY_DEFAULT))
    assert report.results[0].status == DEVIATION and report.ok


def test_kl_div_regimes_pick_out_their_edge_cases():
    from conformance.catalog import get_spec

    spec = get_spec("kl_div")
    cases = {case.label.split(":")[0]: case for case in spec.edge_cases}
    certain = spec.regimes["a_certain_prediction"]
    overflow = spec.regimes["p_over_q_leaves_the_dtype"]
    one_hot = cases["a confident, correct one-hot prediction"]
    tiny_q = cases["q = 3.3e-6 against p = 0.5"]
    assert certain(one_hot) and not certain(tiny_q)
    # log q = 0 where p = 0 is not the kink of a clip of q that p weighs.
    assert not certain(one_hot.with_inputs(target=one_hot.inputs["target"][:, ::-1]))
    assert overflow(tiny_q, "float16") and not overflow(tiny_q, "float32")
    assert not overflow(one_hot, "float16")
