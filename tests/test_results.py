"""The artifact registry (annpal.results): every artifact written with its one writer and read back."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from annpal import results as R
from annpal.errors import InputError

REPO = Path(__file__).resolve().parents[1]
THRESHOLDS = ["99.99", "99.95"]
#: Hand-made values per dtype: three rows, including a missing value where the dtype allows one.
VALUES = {
    "str": ["a", "NA", "rs3"],  # "NA" is text here, kept verbatim
    "str?": ["x", None, "z"],
    "int": [1, -2, 3],
    "float": [0.1, np.nan, 1.234567890123e-300],
    "bool": [True, False, True],
}


def _frame(columns: list[R.Column]) -> pd.DataFrame:
    return pd.DataFrame({c.name: VALUES[c.dtype] for c in columns})


def _sample(artifact: R.Artifact):
    if isinstance(artifact, R.Table):
        return _frame(list(artifact.columns) + artifact.threshold_columns(THRESHOLDS if artifact.per_threshold else []))
    if isinstance(artifact, R.Array):
        shape = (2, 3)[: artifact.ndim] if artifact.ndim > 1 else (3,)
        return np.arange(np.prod(shape)).reshape(shape).astype(np.float64 if artifact.kind == "f" else np.int8)
    return {**{k: k.upper() for k in artifact.keys}, "nested": {"list": [1, 2.5], "none": None}}


@pytest.mark.parametrize("artifact", list(R.ARTIFACTS.values()), ids=list(R.ARTIFACTS))
def test_write_read__every_artifact_round_trips(artifact, tmp_path):
    data = _sample(artifact)
    layout = R.Layout(tmp_path / "R")
    names = {"method": "ig", "kind": "real", "model": "real_s1"}
    path = layout.path(artifact, **names)
    path.parent.mkdir(parents=True)
    assert R.write(artifact, path.parent, data) == path
    got = R.read(artifact, path)
    if isinstance(artifact, R.Table):
        pd.testing.assert_frame_equal(got, data, check_dtype=False)
        for c in artifact.columns:
            want = {"int": "i", "float": "f", "bool": "b", "str": "O", "str?": "O"}[c.dtype]
            assert got[c.name].dtype.kind == want, c.name
    elif isinstance(artifact, R.Array):
        np.testing.assert_array_equal(got, data)
        assert got.dtype == data.dtype
    else:
        assert got == json.loads(json.dumps(data))


def test_layout__paths_and_methods(tmp_path):
    layout = R.Layout(tmp_path)
    assert layout.path(R.SCORES, method="ig") == tmp_path / "pal" / "ig" / "scores.tsv"
    assert layout.path(R.MAS_MATRIX, method="sm", kind="null") == tmp_path / "mas" / "sm_null" / "mas_matrix.npy"
    assert layout.path(R.HISTORY, model="null_s3") == tmp_path / "train" / "null_s3" / "history.tsv"
    assert layout.path(R.SAMPLES) == tmp_path / "prepared" / "samples.tsv"
    for method in ("sm", "ig"):
        (tmp_path / "pal" / method).mkdir(parents=True)
        (tmp_path / "pal" / method / "pal.tsv").write_text("x\n")
    (tmp_path / "pal" / "empty").mkdir()
    assert layout.methods() == ["ig", "sm"]


def test_write__bool_as_01_and_extra_columns_kept_after_declared(tmp_path):
    frame = _frame(list(R.MODELS.columns)).assign(extra=[7, 8, 9])
    frame = frame[["extra"] + R.MODELS.names]
    R.write(R.MODELS, tmp_path, frame)
    header, first = (tmp_path / "models.tsv").read_text().splitlines()[:2]
    assert header.split("\t") == R.MODELS.names + ["extra"]
    assert first.split("\t")[R.MODELS.names.index("degenerate")] == "1"


def test_write__missing_declared_column_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError, match="lacks columns"):
        R.write(R.PVALUES, tmp_path, pd.DataFrame({"threshold": ["99.99"]}))


def _tsv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("threshold\tindex\n99.99\t1\n", "missing columns ['SNP', 'CHR', 'BP', 'amas', 'p_value', 'p_bound', 'p_text']"),
    ("threshold\tindex\tSNP\tCHR\tBP\tamas\tp_value\tp_bound\tp_text\n99.99\t1\trs1\t1\t5\t0.1\t< 1e-6\t1e-6\tx\n",
     "column 'p_value' must hold numbers (row 2: '< 1e-6')"),
    ("threshold\tindex\tSNP\tCHR\tBP\tamas\tp_value\tp_bound\tp_text\n99.99\t1.5\trs1\t1\t5\t0.1\t0\t1e-6\tx\n",
     "column 'index' must hold whole numbers"),
])
def test_read__bad_table_names_file_and_producer(tmp_path, text, message):
    path = _tsv(tmp_path / "pvalues.tsv", text)
    with pytest.raises(InputError) as err:
        R.read(R.PVALUES, path)
    line = str(err.value)
    assert line.startswith(f"{path}: ") and message in line
    assert line.endswith("give the pvalues.tsv written by annpal-pvalues") and "\n" not in line


def test_read__flag_column_must_be_01(tmp_path):
    text = "row\tseed\tkind\tmethod\tdegenerate\tcollapsed\tcollapse_epoch\tcollapsed_models\n0\t1\treal\tig\tmaybe\t0\tNA\tx\n"
    with pytest.raises(InputError, match="column 'degenerate' must hold 0/1"):
        R.read(R.MODELS, _tsv(tmp_path / "models.tsv", text))


def test_read__per_threshold_columns_required(tmp_path):
    path = _tsv(tmp_path / "scores.tsv", "index\tCHR\tBP\tSNP\tmas_mean\tamas_99.9\n0\t1\t5\trs1\t0.1\t0.2\n")
    with pytest.raises(InputError, match=r"missing columns \['count_99.9', 'weight_99.9', 'pal_99.9', "
                                         r"'pal_common_99.9'\]; give the scores.tsv written by annpal-call-pal"):
        R.read(R.SCORES, path)


def test_read__missing_file_unreadable_json_and_wrong_array(tmp_path):
    with pytest.raises(InputError, match=r"gwas.tsv: missing; give the gwas.tsv written by annpal-gwas"):
        R.read(R.GWAS, tmp_path)
    assert R.read_optional(R.GWAS, tmp_path) is None
    (tmp_path / "attr.json").write_text("{not json")
    with pytest.raises(InputError, match=r"attr.json: not valid JSON .*annpal-attribute"):
        R.read(R.ATTR, tmp_path)
    (tmp_path / "attr.json").write_text('{"seed": 1}')
    with pytest.raises(InputError, match=r"attr.json: no 'kind', 'method' field"):
        R.read(R.ATTR, tmp_path)
    np.save(tmp_path / "mas_matrix.npy", np.ones(4))
    with pytest.raises(InputError, match=r"expected a 2-D array of floats, found 1-D float64"):
        R.read_mas_matrix(tmp_path / "mas_matrix.npy")
    np.save(tmp_path / "mas_matrix.npy", np.array([[1.0, np.inf]]))
    with pytest.raises(InputError, match="non-finite values"):
        R.read_mas_matrix(tmp_path / "mas_matrix.npy")
    (tmp_path / "mas.npy").write_text("text")
    with pytest.raises(InputError, match="mas.npy: not a readable .npy file; give the mas.npy written by annpal-attribute"):
        R.read(R.MAS, tmp_path)


def test_read__subset_of_columns(tmp_path):
    R.write(R.SAMPLES, tmp_path, pd.DataFrame({"FID": ["f"], "IID": ["i"], "label": [1], "split": ["val"]}))
    got = R.read(R.SAMPLES, tmp_path, columns=["label", "split"])
    assert list(got.columns) == ["label", "split"] and got["label"].tolist() == [1]


def test_describe__lists_every_artifact():
    text = R.describe()
    assert all(f"`{a.filename}`" in text for a in R.ARTIFACTS.values())


# Modules allowed to call pandas/numpy/json file I/O directly: the registry itself, and readers of
# user inputs or writers of files for other tools (not artifacts passed between steps).
IO_OWNERS = {
    "src/annpal/results.py", "src/annpal/io/plink.py", "src/annpal/io/pgen.py", "src/annpal/io/bgen.py",
    "src/annpal/io/vcf.py", "src/annpal/dataset.py", "src/annpal/gwas.py", "src/annpal/deliverables.py",
    "src/annpal/cli.py", "src/annpal/train.py", "src/annpal/loci.py",
    # the validation study's own summary tables for docs/validation/ (final outputs, read by nobody)
    "bin/annpal-validation-summary",
}
#: A call on a line carrying this comment reads a file that is not an artifact (e.g. Nextflow's trace).
NOT_AN_ARTIFACT = "not an artifact"
IO_CALLS = {"read_csv", "to_csv", "save", "load", "loads", "dumps"}


def test_no_other_module_reads_or_writes_artifacts_directly():
    files = sorted((REPO / "src" / "annpal").rglob("*.py")) + sorted((REPO / "bin").glob("annpal-*"))
    offenders = []
    for path in files:
        rel = str(path.relative_to(REPO))
        if rel in IO_OWNERS:
            continue
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in IO_CALLS:
                base = node.func.value
                name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
                if NOT_AN_ARTIFACT in lines[node.lineno - 1]:
                    continue
                if node.func.attr in {"read_csv", "to_csv"} or name in {"np", "json"}:
                    offenders.append(f"{rel}:{node.lineno} {name}.{node.func.attr}")
    assert not offenders, offenders
