"""HTML building blocks of the report: escaped tables, inlined figures, the page template.

The page is one self-contained file: CSS and the small table-sorting script live in ``template.html``,
figures are inlined as base64 PNG ``data:`` URIs, and nothing links outside the file, so it opens
offline and can be mailed as an attachment.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pandas as pd

from annpal.report.plots import Plot

TEMPLATE = "template.html"


@dataclass(frozen=True)
class Section:
    """One titled part of the page; ``body`` is already-escaped HTML."""

    id: str
    title: str
    body: str


def esc(value: Any) -> str:
    """HTML-escape any value's text."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any) -> str:
    """Human text for a table cell: floats to 4 significant digits, missing as ``NA``."""
    if value is None:
        return "NA"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NA"
        return f"{value:.4g}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def table(frame: pd.DataFrame, *, table_id: str | None = None, sortable: bool = False,
          css_class: str = "", sort_keys: Mapping[str, str] | None = None,
          cell_class: Mapping[str, str] | None = None) -> str:
    """An HTML table of ``frame`` (every cell escaped).

    Parameters
    ----------
    sort_keys
        ``{display column: column holding the sort value}``; that value goes into ``data-sort`` (used by
        the sorting script, e.g. the numeric P behind a ``"< 3.3e-05"`` text).
    cell_class
        ``{column: CSS class}`` for the cells of a column.
    """
    sort_keys = dict(sort_keys or {})
    cell_class = dict(cell_class or {})
    shown = [c for c in frame.columns if c not in set(sort_keys.values()) or c in sort_keys]
    classes = " ".join(c for c in ("sortable" if sortable else "", css_class) if c)
    attrs = (f' id="{esc(table_id)}"' if table_id else "") + (f' class="{classes}"' if classes else "")
    head = "".join(f"<th>{esc(c)}</th>" for c in shown)
    rows = []
    for record in frame.to_dict(orient="records"):
        cells = []
        for c in shown:
            value = record[c]
            klass = cell_class.get(c, "num" if _is_number(value) else "")
            data = ""
            if c in sort_keys:
                key = record[sort_keys[c]]
                data = f' data-sort="{esc(fmt_sort(key))}"'
            elif _is_number(value):
                data = f' data-sort="{esc(fmt_sort(value))}"'
            cls = f' class="{klass}"' if klass else ""
            cells.append(f"<td{cls}{data}>{esc(fmt(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def fmt_sort(value: Any) -> str:
    """Full-precision sort key (missing sorts last as text)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NA"
    return repr(float(value)) if _is_number(value) else str(value)


def key_value_table(items: Iterable[tuple[str, Any]], *, headers: Sequence[str] = ("item", "value")) -> str:
    """Two-column table from ``(key, value)`` pairs."""
    frame = pd.DataFrame(list(items), columns=list(headers))
    return table(frame)


def figure(plot: Plot) -> str:
    """``<figure>`` with the plot's PNG inlined as base64 and its caption."""
    data = base64.b64encode(plot.png.read_bytes()).decode("ascii")
    return (f'<figure id="fig-{esc(plot.name)}"><img alt="{esc(plot.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption><b>{esc(plot.title)}.</b> {esc(plot.caption)}</figcaption></figure>")


def bullet_list(items: Sequence[str], *, css_class: str) -> str:
    """``<ul>`` of escaped items."""
    return f'<ul class="{esc(css_class)}">' + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def render_page(*, title: str, subtitle: str, sections: Sequence[Section], generator: str) -> str:
    """Fill ``template.html`` with the sections (and a navigation bar linking to them)."""
    template = resources.files("annpal.report").joinpath(TEMPLATE).read_text(encoding="utf-8")
    nav = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    body = "\n".join(f'<section id="{esc(s.id)}"><h2>{esc(s.title)}</h2>\n{s.body}\n</section>' for s in sections)
    out = template
    for key, value in (("{{title}}", esc(title)), ("{{subtitle}}", esc(subtitle)), ("{{generator}}", esc(generator)),
                       ("{{nav}}", nav)):
        out = out.replace(key, value)
    # Body last, so text inside the body that looks like a placeholder is never substituted.
    return out.replace("{{body}}", body)
