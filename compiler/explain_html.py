"""The HTML page of an explain Report: the graphs drawn side by side and linked, and the text.

Each drawn value carries the class `val-<key>` (its name's key) and, in a reverse-mode part,
`of-<key>` (the forward value it is the adjoint of, or whose derivative it helps compute: `grad_x`
and `d.x.*` belong to `x`). The page's few lines of script light up, in every panel, the values
related to the one under the pointer, and a click pins them. Styles, script and drawings are all
inline: the page fetches nothing. The page itself is `templates/report.html.j2`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from compiler import draw
from compiler.ir import Graph, Value, count_text, is_reverse_mode_name
from compiler.tracing import BATCH

if TYPE_CHECKING:
    from compiler._explain import Report

TEMPLATE = "report.html.j2"


def templates_directory() -> Path:
    """The `templates` folder, from a checkout or an installed wheel alike."""
    package = importlib.import_module("templates")
    return Path(next(iter(package.__path__)))


def forward_value_of(name: str, forward_names: set[str]) -> str | None:
    """The forward value a reverse-mode value belongs to: `grad_x` and `d.x.permute` -> `x`.
    Rewrites suffix names (`grad_w.1`), so trailing dotted parts are dropped until a forward
    name matches; None for a forward value or when nothing matches."""
    if not is_reverse_mode_name(name):
        return None
    base = name.removeprefix("grad_") if name.startswith("grad_") else name.removeprefix("d.")
    while base not in forward_names:
        if "." not in base:
            return None
        base = base.rsplit(".", 1)[0]
    return base


class _Linker:
    """Gives every value name one short key, shared by all panels, and decorates vertices."""

    def __init__(self, forward_names: set[str]) -> None:
        self.forward_names = forward_names
        self.keys: dict[str, str] = {}

    def key(self, name: str) -> str:
        return self.keys.setdefault(name, f"v{len(self.keys)}")

    def decorate_for(self, panel: str) -> draw.Decorate:
        def decorate(value: Value) -> dict[str, str]:
            classes = ["vertex", f"val-{self.key(value.name)}"]
            owner = forward_value_of(value.name, self.forward_names)
            if owner is not None:
                classes.append(f"of-{self.key(owner)}")
            return {"id": f"{panel}-{self.key(value.name)}", "class": " ".join(classes)}

        return decorate


def _names(graphs: Iterable[Graph]) -> set[str]:
    return {v.name for g in graphs for v in [*g.inputs, *(n.output for n in g.nodes)]}


def panel_rows(report: Report, renderer: str) -> list[dict[str, Any]]:
    """Two rows of two drawings: forward beside its reverse-mode part, as built and as
    compiled."""
    parts = report.partition
    linker = _Linker(_names([report.forward, parts.forward, report.inference]))
    rows = [("As built", [("forward", "forward, as traced", report.forward),
                          ("reverse", "reverse mode, as built by compiler.grad",
                           report.reverse_backward_graph())]),
            ("Simplified and partitioned", [
                ("saving", "forward function (returns what backward needs)", parts.forward),
                ("backward", "backward function", parts.backward)])]
    return [{"title": title,
             "panels": [{"id": panel, "title": caption, "name": graph.name,
                         "svg": draw.svg(graph, linker.decorate_for(panel), renderer)}
                        for panel, caption, graph in panels]}
            for title, panels in rows]


def render_html(report: Report, renderer: str = "auto") -> str:
    """The report as one self-contained HTML page."""
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(templates_directory()),
                                     autoescape=True, trim_blocks=True, lstrip_blocks=True)
    flop_rows = [{"label": label, "forward": count_text(f), "backward": count_text(b)}
                 for label, (f, b) in report.flop_table().items()]
    saved = [{"name": v.name, "type": v.type_text(),
              "bytes": count_text(per * BATCH + fixed, " B")}
             for v, per, fixed in report.saved_values()]
    kernels = [{"title": k.title, "uses": k.uses, "pretty": k.pretty(), "latex": k.latex()}
               for k in report.kernels]
    partition_text = f"{report.partition.forward}\n\n{report.partition.backward}"
    ir = {"forward": ("Forward graph, as traced", str(report.forward)),
          "reverse": ("Reverse mode, as built by compiler.grad", str(report.reverse)),
          "simplified": ("Simplified (what compiler.compile lowers)", str(report.simplified)),
          "partition": ("Forward and backward functions", partition_text),
          "inference": ("Inference (no_grad): the forward alone, simplified",
                        str(report.inference))}
    return environment.get_template(TEMPLATE).render(
        name=report.name, summary=report.summary(), rows=panel_rows(report, renderer), ir=ir,
        gradients=[(source.name, raw.name, simplified.name)
                   for source, raw, simplified in report.gradients()],
        rewrites=report.rewrites.events, saved=saved, saved_total=report.saved_bytes_text(),
        inputs_read=[v.name for v in report.partition.forward_inputs_used],
        kernels=kernels, flops=flop_rows)

