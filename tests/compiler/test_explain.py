"""compiler.explain: the report's text (against a golden file), its rewrite log, kernel formulas
and derivatives, saved bytes and FLOPs; graph.to_dot() and the builtin SVG layout; the HTML page
(self-contained, linked, and drawn in headless Chromium); `symgrad explain`; the study example."""

import os
import re
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest
import sympy

import runtime
from compiler import cli
from compiler._explain import Report, count_text, explain, node_flops
from compiler.draw import edges, layered_svg, vertices
from compiler.explain_html import forward_value_of
from compiler.tracing import BATCH
from runtime import nn

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"
F = runtime.nn.functional


def one_layer(x, w, b):
    return runtime.matmul(x, w) + b


def bce_with_logits(z, y):
    return F.binary_cross_entropy_with_logits(z, y)


def explain_autograd_tutorial() -> Report:
    """The graph of PyTorch's autograd tutorial: z = x @ w + b, BCE-with-logits against y."""
    runtime.manual_seed(0)
    x = runtime.ones(5)
    y = runtime.zeros(3)
    w = runtime.randn(5, 3, requires_grad=True)
    b = runtime.randn(3, requires_grad=True)
    return explain(one_layer, (x, w, b, y), loss_fn=bce_with_logits,
                            dynamic_batch=False)


class NeuralNetwork(nn.Module):
    """The tutorial MLP of "Build the Neural Network"."""

    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
            nn.Linear(512, 10))

    def forward(self, x):
        return self.linear_relu_stack(self.flatten(x))


@pytest.fixture(scope="module")
def tutorial():
    return explain_autograd_tutorial()


@pytest.fixture(scope="module")
def mlp():
    runtime.manual_seed(0)
    return explain(NeuralNetwork(), runtime.rand(1, 1, 28, 28))


# ----- the printed IR --------------------------------------------------------------------------

def test_printed_ir_of_the_autograd_tutorial_matches_the_golden_file(tutorial):
    printed = f"{tutorial.forward}\n\n{tutorial.reverse}\n"
    golden = GOLDEN / "autograd_tutorial_ir.txt"
    if os.environ.get("SYMGRAD_UPDATE_GOLDEN"):
        golden.write_text(printed)
    assert printed == golden.read_text(), (
        "the printed forward and reverse-mode IR changed; if on purpose, rerun with "
        "SYMGRAD_UPDATE_GOLDEN=1 and review the diff of the golden file")


def test_the_printed_ir_is_the_same_on_every_run():
    assert str(explain_autograd_tutorial()) == str(explain_autograd_tutorial())


def test_joint_graph_marks_the_forward_values_backward_reads(tutorial):
    lines = str(tutorial.reverse).splitlines()
    assert lines[0].endswith("{  # backward reads %x, %y")
    marked = [line.split(":")[0].strip() for line in lines if line.endswith("# read by backward")]
    assert marked == ["%add"]  # BCE's derivative needs the logits; matmul's needs only x


def test_names_say_where_values_came_from_and_shapes_keep_the_batch_size(mlp):
    text = str(mlp.reverse)
    assert "%x: f32[N, 1, 28, 28]" in text
    assert "%linear_relu_stack.1.out: f32[N, 512] = relu(%linear_relu_stack.0.out)" in text
    assert "%grad_linear_relu_stack.0.weight: f32[512, 784] = permute(" in text
    # without a loss, reverse mode starts from the output's gradient, an input of the graph
    assert mlp.reverse.inputs[-1].name == "grad_linear_relu_stack.4.out"


def test_a_fused_kernel_prints_its_expression(tutorial):
    fused = [n for n in tutorial.simplified.nodes if n.op_name == "fused"]
    assert fused
    for node in fused:
        assert f"{{expr={node.op.expr}}}" in node.text()


def test_gradients_name_the_adjoint_of_each_input(tutorial):
    names = [(s.name, raw.name) for s, raw, _ in tutorial.gradients()]
    # b's adjoint is add's: broadcasting b to add's shape changed nothing to undo
    assert names == [("w", "grad_w"), ("b", "grad_add")]
    assert "gradient of %b: %grad_add as built" in str(tutorial)


# ----- rewrites, kernels, saved values, FLOPs ---------------------------------------------------

class LogOfSoftmax(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x):
        return runtime.log(runtime.softmax(self.linear(x), dim=1))


def test_rewrite_log_shows_log_of_softmax_becoming_log_softmax():
    report = explain(LogOfSoftmax(), runtime.randn(2, 4))
    [event] = [e for e in report.rewrites.events if e.rewrite == "log_of_softmax"]
    assert event.stage == "stabilize"
    assert event.before == "%log: f32[N, 3] = log(%softmax)"
    assert event.after == "%log: f32[N, 3] = log_softmax(%linear.out) {dim=1}"
    ops = [n.op_name for n in report.simplified.nodes]
    assert "log_softmax" in ops and "softmax" not in ops and "log" not in ops
    assert "[stabilize] log_of_softmax: %log: f32[N, 3] = log(%softmax)\n" \
           "    -> %log: f32[N, 3] = log_softmax(%linear.out) {dim=1}" in str(report)


def _branches(expr):
    expr = sympy.piecewise_fold(expr)
    return [e for e, _ in expr.args] if isinstance(expr, sympy.Piecewise) else [expr]


def assert_sympy_equal(actual, expected):
    """Equal as sympy proves it, on every branch of a piecewise expression."""
    for branch in _branches(actual):
        assert sympy.simplify(branch - expected) == 0, f"{branch} != {expected}"


def test_sigmoid_kernel_derivative_is_sigmoid_times_one_minus_sigmoid():
    model = nn.Sequential(nn.Linear(4, 3), nn.Sigmoid())
    report = explain(model, runtime.randn(2, 4))
    [kernel] = [k for k in report.kernels
                if k.title == "fused kernel" and k.formula.has(sympy.exp)]
    assert kernel.uses == ["inference: %1.out = f(a0=%0.matmul, a1=%0.bias)"]
    a0, a1 = kernel.symbols
    sigmoid = 1 / (1 + sympy.exp(-(a0 + a1)))
    g = kernel.incoming_gradient
    assert_sympy_equal(kernel.formula, sigmoid)
    assert_sympy_equal(kernel.vjps[0], g * sigmoid * (1 - sigmoid))
    assert_sympy_equal(kernel.vjps[1], g * sigmoid * (1 - sigmoid))
    assert "g·∂f/∂a0 =" in str(report)
    assert r"g\,\frac{\partial f}{\partial a_{0}} &=" in report.latex()


def test_bce_kernel_derivative_is_sigmoid_minus_target(tutorial):
    [kernel] = [k for k in tutorial.kernels
                if k.uses == ["training: %loss.binary_cross_entropy_with_logits = "
                              "f(a0=%add, a1=%y)"]]
    z, y = kernel.symbols
    assert_sympy_equal(kernel.derivatives[0], 1 / (1 + sympy.exp(-z)) - y)


def test_relu_backward_kernel_comes_from_sympy(mlp):
    [kernel] = [k for k in mlp.kernels if k.title == "relu_vjp0 kernel"]
    grad, x = kernel.symbols
    assert kernel.formula == grad * sympy.Piecewise((0, x <= 0), (1, True))
    assert len(kernel.uses) == 2 and all(u.startswith("training: %grad_") for u in kernel.uses)


def test_saved_for_backward_are_the_relu_outputs_of_the_mlp(mlp):
    saved = [(v.name, per_example, fixed) for v, per_example, fixed in mlp.saved_values()]
    assert saved == [("linear_relu_stack.1.out", 2048, 0), ("linear_relu_stack.3.out", 2048, 0)]
    assert mlp.saved_bytes_text() == "4,096 B·N"
    assert "  %linear_relu_stack.1.out: f32[N, 512]  2,048 B·N" in str(mlp)


def test_flops_of_the_mlp(mlp):
    products = 2 * (784 * 512 + 512 * 512 + 512 * 10)
    forward = products + (512 + 512 + 10) + (512 + 512)  # bias adds, relus
    # weight gradients are products again, input gradients for the two later layers; bias
    # gradients sum over the batch; relu_vjp0 (g * step) is two operations per element
    backward = products + 2 * (512 * 512 + 10 * 512) + (512 + 512 + 10) + 2 * 2 * 512
    table = mlp.flop_table()
    assert table["as built"] == (forward * BATCH, backward * BATCH)
    # compiled, each hidden bias add and its ReLU are one fused kernel (backward reads the
    # ReLU's output only), counted by the operations of its formula
    [bias_relu] = {n.op.expr for n in mlp.partition.forward.nodes if n.op_name == "fused"}
    fused_forward = products + 10 + 2 * 512 * sympy.count_ops(bias_relu)
    assert table["simplified"] == (fused_forward * BATCH, backward * BATCH)
    assert f"{fused_forward:,}·N" in str(mlp)


def test_node_flops_of_a_gemm_and_of_data_movement(mlp):
    gemm = next(n for n in mlp.simplified.nodes if n.op_name == "gemm")
    assert node_flops(gemm) == 2 * BATCH * 512 * 784
    reshape = next(n for n in mlp.simplified.nodes if n.op_name == "reshape")
    assert node_flops(reshape) == 0


def test_count_text():
    assert count_text(2140160 * BATCH + 512) == "2,140,160·N + 512"
    assert count_text(sympy.Integer(12), " B") == "12 B"
    assert count_text(4096 * BATCH, " B") == "4,096 B·N"


def test_gradients_follow_requires_grad():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    model[0].weight.requires_grad_(False)
    x = runtime.randn(2, 4, requires_grad=True)
    report = explain(model, x)
    assert [s.name for s, _, _ in report.gradients()] == ["input", "0.bias", "2.weight",
                                                           "2.bias"]


def test_nothing_to_differentiate_is_an_error_that_says_so():
    with pytest.raises(ValueError, match="no parameter of the model and no example input"):
        explain(lambda x: x * 2, runtime.randn(2, 3))


# ----- drawing ---------------------------------------------------------------------------------

def test_to_dot_has_a_vertex_per_value_and_an_edge_per_operand(tutorial):
    dot = tutorial.reverse.to_dot()
    assert dot.startswith('digraph "grad_one_layer" {')
    drawn = vertices(tutorial.reverse)
    assert len(re.findall(r"^  v\d+ \[", dot, re.M)) == len(drawn)
    assert len(re.findall(r"^  v\d+ -> v\d+;", dot, re.M)) == len(edges(tutorial.reverse))
    assert 'label="matmul\\n%grad_w\\nf32[5, 3]"' in dot
    assert 'fillcolor="#fdebd3"' in dot  # reverse-mode nodes are tinted


def test_to_dot_is_valid_graphviz(tutorial):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    result = subprocess.run(["dot", "-Tsvg"], input=tutorial.reverse.to_dot(), text=True,
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "<svg" in result.stdout


def _rects(svg_text):
    root = ET.fromstring(svg_text)
    namespace = "{http://www.w3.org/2000/svg}"
    boxes = []
    for group in root.iter(f"{namespace}g"):
        shape = group.find(f"{namespace}rect")
        if shape is None:
            shape = group.find(f"{namespace}ellipse")
            x = float(shape.get("cx")) - float(shape.get("rx"))
            y = float(shape.get("cy")) - float(shape.get("ry"))
            boxes.append((x, y, 2 * float(shape.get("rx")), 2 * float(shape.get("ry"))))
        else:
            boxes.append(tuple(float(shape.get(k)) for k in ("x", "y", "width", "height")))
    return root, boxes


def test_builtin_layout_draws_every_value_without_overlaps(mlp):
    graph = mlp.reverse_backward_graph()
    svg_text = layered_svg(graph)
    root, boxes = _rects(svg_text)
    assert len(boxes) == len(vertices(graph))
    paths = root.findall("{http://www.w3.org/2000/svg}path")
    assert len(paths) == len(edges(graph))
    width, height = (float(v) for v in root.get("viewBox").split()[2:])
    for i, (x, y, w, h) in enumerate(boxes):
        assert 0 <= x and x + w <= width and 0 <= y and y + h <= height
        for x2, y2, w2, h2 in boxes[i + 1:]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, "boxes overlap"


def test_reverse_mode_values_belong_to_forward_values():
    names = {"x", "w", "linear.out", "linear.matmul"}
    assert forward_value_of("grad_linear.out", names) == "linear.out"
    assert forward_value_of("grad_w.1", names) == "w"  # a rewrite's renamed result
    assert forward_value_of("d.linear.matmul.permute.1", names) == "linear.matmul"
    assert forward_value_of("linear.out", names) is None
    assert forward_value_of("grad_unknown", names) is None


# ----- the HTML page -----------------------------------------------------------------------------

def _vertex_classes(page, name_prefix):
    """Classes of the drawn vertices whose id is `<panel>-<key>`, by panel."""
    return dict(re.findall(r'<g class="([^"]*)" id="(' + name_prefix + r'-v\d+)"', page))


def test_html_page_is_self_contained_and_links_adjoints_to_forward_values(mlp, tmp_path):
    path = mlp.save_html(tmp_path / "report.html", renderer="builtin")
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    external = re.findall(r'(?:src|href)="(?!#)[^"]*"|<link|@import|url\((?!#)', page)
    assert external == [], "the page must fetch nothing"
    assert page.count("<svg") == 4  # forward and reverse mode, as built and simplified
    for title in ("forward, as traced", "reverse mode, as built by compiler.grad",
                  "Rewrites that fired", "Saved for backward", "Elementwise kernels", "FLOPs"):
        assert title in page
    # the forward ReLU output and its adjoint share a key: val-K there, of-K on the adjoint
    forward_key = re.search(r'id="forward-(v\d+)"><title>%linear_relu_stack.1.out',
                            page).group(1)
    adjoint = re.search(r'<g class="([^"]*)" id="reverse-v\d+"><title>'
                        r'%grad_linear_relu_stack.1.out', page).group(1)
    assert f"of-{forward_key}" in adjoint.split()


def _read_png(path):
    """RGB pixels of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes)."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, chunks = 8, []
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    assert depth == 8 and color in (2, 6) and interlace == 0
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    image = np.zeros((height, stride), dtype=np.int64)
    previous = np.zeros(stride, dtype=np.int64)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        row = np.frombuffer(raw, np.uint8, stride, start + 1).astype(np.int64)
        if kind == 1:  # Sub
            row = np.cumsum(row.reshape(width, channels), axis=0).ravel() % 256
        elif kind == 2:  # Up
            row = (row + previous) % 256
        elif kind in (3, 4):  # Average, Paeth: each byte depends on the one before
            row = _unfilter_sequential(kind, row.tolist(), previous.tolist(), channels)
        image[y] = row
        previous = row
    return image.reshape(height, width, channels)[:, :, :3]


def _unfilter_sequential(kind, line, up, channels):
    out = [0] * len(line)
    for i, value in enumerate(line):
        a = out[i - channels] if i >= channels else 0
        b = up[i]
        if kind == 3:
            out[i] = (value + (a + b) // 2) & 255
            continue
        c = up[i - channels] if i >= channels else 0
        pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
        out[i] = (value + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    return np.array(out, dtype=np.int64)


def _pixels_of_color(region, rgb):
    return int((np.abs(region - np.array(rgb)).sum(axis=2) <= 6).sum())


def test_html_report_of_the_tutorial_mlp_shows_both_graphs_in_chromium(mlp, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    page = mlp.save_html(tmp_path / "report.html", renderer="builtin")
    screenshot = tmp_path / "report.png"
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={screenshot}", "--window-size=1600,1200", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180)
    assert screenshot.exists(), f"no screenshot; chromium said: {result.stderr[-2000:]}"
    assert screenshot.stat().st_size > 20_000
    pixels = _read_png(screenshot)
    assert pixels.shape == (1200, 1600, 3)
    assert pixels.std() > 20, "the screenshot is (nearly) blank"
    graphs = pixels[150:]  # below the title and summary
    left, right = graphs[:, :800], graphs[:, 800:]
    forward_fill, reverse_fill = (0xE8, 0xF0, 0xFE), (0xFD, 0xEB, 0xD3)
    assert _pixels_of_color(left, forward_fill) > 20_000, "no forward graph on the left"
    assert _pixels_of_color(right, reverse_fill) > 20_000, "no reverse-mode graph on the right"
    assert _pixels_of_color(left, reverse_fill) == 0
    assert _pixels_of_color(right, forward_fill) == 0


# ----- the command and the example ---------------------------------------------------------------

def test_symgrad_explain_prints_the_report_and_writes_the_page(tmp_path, capsys):
    html = tmp_path / "mlp.html"
    status = cli.main(["explain", str(ROOT / "examples" / "build_model.py") + ":NeuralNetwork",
                       "--input", "1,1,28,28", "--html", str(html), "--renderer", "builtin"])
    out = capsys.readouterr().out
    assert status == 0
    assert out.startswith("symgrad explain: NeuralNetwork\n")
    for heading in ("== forward graph, as traced ==",
                    "== reverse mode, as built by compiler.grad ==",
                    "== simplified (what compiler.compile lowers) ==", "== rewrites that fired",
                    "== saved for backward ==", "== FLOPs =="):
        assert heading in out
    assert "graph NeuralNetwork(%x: f32[N, 1, 28, 28]" in out
    assert out.rstrip().endswith(f"wrote {html}")
    assert "<svg" in html.read_text()


def test_symgrad_explain_names_a_missing_model(capsys):
    status = cli.main(["explain", str(ROOT / "examples" / "build_model.py") + ":Nothing",
                       "--input", "1,1,28,28"])
    assert status == 1
    assert "defines no class 'Nothing'" in capsys.readouterr().err


def test_study_reverse_mode_example_runs_as_a_script(tmp_path):
    html = tmp_path / "study.html"
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "study_reverse_mode.py"),
                             "--html", str(html)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "graph one_layer(%x: f32[5], %w: f32[5, 3], %b: f32[3], %y: f32[3]) {" in out
    assert "the gradient of %b is %grad_add" in out
    assert "[fuse] fuse_elementwise" in out
    assert "sympy: d f / d a0 == sigmoid(a0) - a1 on every branch: True" in out
    assert "grad_w matches w.grad: True" in out and "grad_b matches b.grad: True" in out
    assert html.exists()
