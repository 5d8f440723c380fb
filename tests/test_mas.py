"""MAS: per-sample L1 normalisation and averaging (docs/method.md §3), streamed; sample selection."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from annpal.attribution.mas import MasAccumulator, attribution_rows, mas_from_attributions


def _authors_mas(scores: np.ndarray) -> np.ndarray:
    """The loops of the authors' 3a_get_ig_sm_mas.py, re-implemented plainly."""
    a = np.array(scores, dtype=np.float64)
    for i in range(a.shape[0]):
        a[i, :] = a[i, :] / np.sum(a[i, :])
    return np.array([a[:, i].mean() for i in range(a.shape[1])])


def test_mas_from_attributions__hand_example():
    scores = np.array([[1.0, 1.0, 2.0], [0.0, 0.0, 5.0]])
    # rows normalise to (.25, .25, .5) and (0, 0, 1); their mean by hand:
    np.testing.assert_allclose(mas_from_attributions(scores), [0.125, 0.125, 0.75], rtol=0, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mas_from_attributions__matches_authors_loops_and_sums_to_one(dtype):
    rng = np.random.default_rng(3)
    scores = np.abs(rng.standard_normal((37, 250))).astype(dtype)
    mas = mas_from_attributions(scores)
    assert mas.dtype == np.float64
    np.testing.assert_allclose(mas, _authors_mas(scores), rtol=1e-12, atol=0)
    assert mas.sum() == pytest.approx(1.0, abs=1e-12)


def test_mas_accumulator__streaming_equals_one_shot():
    rng = np.random.default_rng(5)
    scores = np.abs(rng.standard_normal((53, 40)))
    acc = MasAccumulator(40)
    for start in range(0, 53, 8):
        acc.add(scores[start:start + 8])
    result = acc.result()
    assert result.n_samples == 53 and result.n_zero_sum == 0
    np.testing.assert_allclose(result.mas, _authors_mas(scores), rtol=1e-13, atol=0)


def test_mas_accumulator__zero_rows_skipped_counted_and_warned(caplog):
    rng = np.random.default_rng(7)
    good = np.abs(rng.standard_normal((6, 10)))
    scores = np.vstack([good[:3], np.zeros((2, 10)), good[3:]])
    acc = MasAccumulator(10)
    acc.add(scores[:4])
    acc.add(scores[4:])
    with caplog.at_level(logging.WARNING):
        result = acc.result()
    assert result.n_zero_sum == 2 and result.n_samples == 6
    assert result.summary() == {"n_samples": 6, "n_zero_sum_rows": 2, "degenerate": False}
    np.testing.assert_allclose(result.mas, _authors_mas(good), rtol=1e-13)
    assert result.mas.sum() == pytest.approx(1.0, abs=1e-12)
    assert "all-zero" in caplog.text


def test_mas_accumulator__all_rows_zero_gives_uniform_degenerate(caplog):
    acc = MasAccumulator(4)
    acc.add(np.zeros((3, 4)))
    with caplog.at_level(logging.WARNING):
        result = acc.result()
    assert result.degenerate and result.n_samples == 0 and result.n_zero_sum == 3
    np.testing.assert_array_equal(result.mas, np.full(4, 0.25))
    assert "dead network" in caplog.text


@pytest.mark.parametrize("bad, match", [
    (np.array([[1.0, -0.5, 1.0]]), "absolute"),
    (np.array([[1.0, np.nan, 1.0]]), "NaN"),
    (np.array([[1.0, 1.0]]), "shape"),
])
def test_mas_accumulator__rejects_bad_scores(bad, match):
    with pytest.raises(ValueError, match=match):
        MasAccumulator(3).add(bad)


def test_mas_accumulator__empty_batch_is_a_no_op():
    acc = MasAccumulator(3)
    acc.add(np.empty((0, 3)))
    acc.add(np.array([[1.0, 0.0, 1.0]]))
    np.testing.assert_array_equal(acc.result().mas, [0.5, 0.0, 0.5])


def test_attribution_rows__labels_when_no_case_rows():
    labels = np.array([0, 1, 1, 0, 1], dtype=np.int8)
    rows, source = attribution_rows(labels, {"kind": "real", "seed": 1})
    assert rows.tolist() == [1, 2, 4] and source == "label"


def test_attribution_rows__case_rows_win_and_are_sorted():
    labels = np.array([0, 1, 1, 0, 1], dtype=np.int8)
    rows, source = attribution_rows(labels, {"case_rows": [3, 0]})
    assert rows.tolist() == [0, 3] and source == "case_rows"


@pytest.mark.parametrize("meta, match", [
    ({"case_rows": [0, 9]}, "outside"),
    ({"case_rows": [1, 1]}, "duplicated"),
    ({"case_rows": []}, "no samples"),
])
def test_attribution_rows__bad_case_rows(meta, match):
    with pytest.raises(ValueError, match=match):
        attribution_rows(np.array([0, 1, 1], dtype=np.int8), meta)


def test_attribution_rows__no_cases():
    with pytest.raises(ValueError, match="no samples"):
        attribution_rows(np.zeros(4, dtype=np.int8), {})
