"""The report in a real headless browser (Debian ``chromium``): loads offline, no console errors, loci
table shown and sortable; a screenshot is saved under the test's tmp folder.

Chromium is driven from the command line only (``--dump-dom``, ``--screenshot``); console messages are
read from its stderr log (``--enable-logging=stderr``), where every ``console.*`` call and uncaught
exception appears as a ``CONSOLE`` line. The report logs nothing itself, so any such line from the page
is a failure. The page sets ``<body data-ready="1">`` at the end of its script, so a script error shows
up as a missing attribute in the dumped DOM.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from results_fixture import build_annotated_report

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium absent (apt-get install chromium, or make test)"),
]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0"]


def run_chromium(page: Path, profile: Path, *extra: str) -> tuple[str, list[str]]:
    """Run chromium on ``page``; return stdout and the console lines of the page from stderr."""
    proc = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    return proc.stdout, console


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out, _ = build_annotated_report(tmp_path_factory.mktemp("browser"))
    return out / "report.html"


def test_report__loads_without_console_errors(report, tmp_path):
    dom, console = run_chromium(report, tmp_path / "profile", "--dump-dom")
    assert console == []
    assert re.search(r'<body[^>]*data-ready="1"', dom), "the page script did not finish"
    assert re.search(r'<body[^>]*data-sortable-tables="\d+"', dom)
    assert 'id="loci-ig-99.99"' in dom
    rows = re.search(r'id="loci-ig-99.95".*?<tbody>(.*?)</tbody>', dom, re.S).group(1)
    assert rows.count("<tr>") == 3


def test_report__header_click_sorts(report, tmp_path):
    # A copy of the page with a probe script that clicks the loci table's "lead_bp" header twice.
    probe = """<script>
    (function () {
      var t = document.getElementById("loci-ig-99.95");
      var th = Array.prototype.filter.call(t.tHead.rows[0].cells, function (c) { return c.textContent === "lead_bp"; })[0];
      var col = th.cellIndex;
      function values() { return Array.prototype.map.call(t.tBodies[0].rows, function (r) { return r.cells[col].textContent; }).join(","); }
      th.click(); document.body.dataset.asc = values();
      th.click(); document.body.dataset.desc = values() + ":" + th.getAttribute("aria-sort");
    })();
    </script></body>"""
    page = tmp_path / "probe.html"
    page.write_text(report.read_text().replace("</body>", probe))
    dom, console = run_chromium(page, tmp_path / "profile", "--dump-dom")
    assert console == []
    assert 'data-asc="120000,150000,260000"' in dom
    assert 'data-desc="260000,150000,120000:descending"' in dom


def test_report__screenshot(report, tmp_path):
    shot = tmp_path / "report.png"
    _, console = run_chromium(report, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,2000")
    assert console == []
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000
