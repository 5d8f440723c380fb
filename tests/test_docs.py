"""The repository is self-contained: code and docs cite docs/method.md and docs/architecture.md, never files a
user does not have; the cited sections exist; the artifact table of docs/architecture.md is the registry's."""

from __future__ import annotations

import re

from conftest import REPO

from annpal import results

SEARCHED = ["src", "bin", "modules", "subworkflows", "workflows", "conf", "docs", "tests", "benchmarks", "README.md"]
OUTSIDE = re.compile(r"METHOD\.md|DESIGN\.md|\.\./shared")


def _files():
    for name in SEARCHED:
        path = REPO / name
        for f in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
            if "__pycache__" not in f.parts and f.suffix not in {".png", ".npy", ".pt", ".bed", ".gz", ".pyc"}:
                yield f


def test_docs__nothing_points_outside_the_repository():
    this = REPO / "tests" / "test_docs.py"
    hits = [f"{f.relative_to(REPO)}:{k}" for f in _files() if f != this
            for k, line in enumerate(f.read_text(errors="ignore").splitlines(), 1) if OUTSIDE.search(line)]
    assert not hits, hits


def test_docs__cited_method_sections_exist():
    text = (REPO / "docs" / "method.md").read_text()
    sections = {int(n) for n in re.findall(r"^## (\d+)\. ", text, flags=re.M)}
    assert sections == set(range(1, 11))
    cited = {int(n) for f in _files() for n in re.findall(r"docs/method\.md §(\d+)", f.read_text(errors="ignore"))}
    assert cited and cited <= sections, cited - sections


def test_docs__architecture_lists_the_artifact_registry():
    assert results.describe() in (REPO / "docs" / "architecture.md").read_text()
