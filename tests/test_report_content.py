"""The report of a model that is not LeNet-5 (a tiny custom CNN on MNIST): it opens with the summary box,
has the dense baseline, the training budget ("not recorded" for a bundle without one), the trade-off,
per-layer latency and memory-map figures, and no LeNet-5 or seed-report section; its HTML renders in
headless Chromium with every figure drawn and every relative link resolving; bundle text cannot become
markup."""
import copy
import json
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote, urlparse

import pytest
import torch
import torch.nn as nn

import headless_chromium
from sn_compile_helpers import bundle_from, calib_images
from sparsenest.analysis import report
from sparsenest.analysis.report.training import training_budget


class TinyCNN(nn.Module):
    """conv (4 filters, stride 2) -> relu -> maxpool -> linear: a non-LeNet model that compiles in seconds."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 5, stride=2, padding=2)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 7 * 7, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_report")
    torch.manual_seed(0)
    path = bundle_from(TinyCNN().eval(), (1, 28, 28), sparsities=(0.8, 0.5), name="tiny-cnn").save(d / "t.nest")
    rep = report.build_report(path, d / "report", samples=[], simulate=False, eval_images=64, harvest_hours=12,
                              calib=calib_images(), log=lambda *a: None)
    return d / "report", rep


def test_non_lenet_report_has_no_lenet_sections(tiny_report):
    out, rep = tiny_report
    report.validate_report(json.loads((out / "report.json").read_text()))
    md = (out / "report.md").read_text()
    headings = [ln for ln in md.splitlines() if ln.startswith("#")]
    assert headings[1] == "## Summary"                          # the box comes first, after the title
    assert not [h for h in headings if "lenet" in h.lower() or "seed" in h.lower()], headings
    assert "seed report" not in md.lower() and "4 % on the CPU" not in md
    assert rep["seed_comparison"] is None and rep["breakeven"]["seed_claims"] is None
    assert rep["model"]["lenet5_comparable"] is False and rep["model"]["seed_row"] is None
    # the summary box: every level with accuracy, latency and energy, the dense twin, storage, switch cost
    box = md.split('<div class="summary" markdown="1">')[1].split("</div>")[0]
    for lv in rep["levels"]:
        assert f"| L{lv['level']} |" in box
    assert "| dense Q15 twin |" in box and "Costliest switch" in box and "Our training budget: not recorded" in box
    # the dense baseline is a measured build of the same network: more MACs than any level, every weight
    d = rep["dense_baseline"]
    assert d["macs"]["source"] == "host_board" and d["macs"]["value"] > max(lv["macs"]["value"] for lv in rep["levels"])
    assert d["weight_bytes"]["value"] == rep["storage"]["dense_q15_bytes"]["value"]
    assert d["q15_accuracy"]["n"] == 64 and "## Dense baseline" in md
    assert not rep["training"]["recorded"] and "## Training budget" in md
    # the memory map: the planner's bytes inside board.toml's regions
    regions = {r["name"]: r for r in rep["memory_map"]["regions"]}
    assert regions["lower FRAM"]["used_total"] == rep["storage"]["fr5994"]["lower_fram_bytes"]["value"]
    assert all(0 <= r["used_total"] <= r["bytes"] for r in regions.values())
    for key in ("accuracy_vs_energy", "latency_per_layer", "memory_map"):
        assert f"]({rep['figures'][key]})" in md and (out / rep["figures"][key]).stat().st_size > 5000


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if (tag, k) in (("img", "src"), ("a", "href"), ("link", "href"), ("script", "src")) and v:
                self.refs.append(v)


def _images(html: Path, tmp_path: Path) -> list:
    """[src, complete, naturalWidth] of every <img> once Chromium has loaded the page from a file:// URL."""
    with headless_chromium.Browser(html.resolve().as_uri(), tmp_path / "profile") as br:
        return br.evaluate("Array.from(document.images, i => [i.getAttribute('src'), i.complete, i.naturalWidth])")


@pytest.mark.skipif(headless_chromium.available() is None,
                    reason="chromium is not installed (Debian package `chromium`; make setup installs it)")
def test_report_html_renders_in_chromium(tiny_report, tmp_path):
    out, rep = tiny_report
    html = out / "report.html"
    imgs = _images(html, tmp_path)
    assert sorted(src for src, _, _ in imgs) == sorted(rep["figures"].values())
    assert all(done and width > 0 for _, done, width in imgs), imgs
    # every relative link or source of the page names a file that exists
    p = _Links()
    p.feed(html.read_text())
    rel = [r for r in p.refs if not urlparse(r).scheme and not r.startswith("#")]
    assert len(rel) >= len(rep["figures"])
    for r in rel:
        assert (out / unquote(urlparse(r).path)).is_file(), r
    # the check sees a broken figure: a copy with one PNG cut short renders that image with no width
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "report.html").write_bytes(html.read_bytes())
    (broken / "figures").mkdir()
    for rel_png in rep["figures"].values():
        data = (out / rel_png).read_bytes()
        (broken / rel_png).write_bytes(data[:100] if rel_png.endswith("memory_map.png") else data)
    bad = {src: width for src, _, width in _images(broken / "report.html", tmp_path / "b")}
    assert bad[rep["figures"]["memory_map"]] == 0 and bad[rep["figures"]["breakeven"]] > 0


def test_bundle_text_never_becomes_markup(tiny_report):
    """A model name with HTML and a table separator is text in report.md and report.html."""
    rep = copy.deepcopy(tiny_report[1])
    rep["model"]["name"] = rep["summary"]["model"] = 'x<script>alert(1)</script>|<img src=y onerror=z>'
    md = report.render_markdown(rep)
    html = report.render_html(md, rep["model"]["name"])
    assert "<script>" not in md and "<img src=y" not in md and "&lt;script&gt;" in md
    assert "<script>" not in html and "<img src=y" not in html


def test_training_budget_recorded_or_not():
    rec = training_budget(SimpleNamespace(manifest={
        "prune": {"method": "irregular", "mode": "joint"},
        "train_config": {"epochs_dense": 2, "epochs_retrain": 3, "train_samples": 5000, "wall_seconds": 12.5}}))
    assert rec["recorded"]
    assert rec["items"]["epochs_dense"] == {"value": 2, "unit": "epochs", "source": "bundle", "label": "dense epochs"}
    assert rec["caveat"] == "our training budget: 2 dense + 3 retraining epochs on 5,000 samples (irregular, joint)"
    old = training_budget(SimpleNamespace(manifest={"prune": {"method": "magnitude"}, "train_config": {}}))
    assert not old["recorded"] and old["caveat"] == "our training budget: not recorded in the bundle"
    assert old["items"]["train_samples"]["value"] is None
    # `train --from`: no dense epochs were run, whatever the config's default says
    fb = training_budget(SimpleNamespace(manifest={
        "prune": {"method": "row", "mode": "progressive"}, "source": {"format": "tflite"},
        "train_config": {"epochs_dense": 6, "epochs_retrain": 2, "train_samples": 800, "from_bundle": "kws.nest"}}))
    assert fb["items"]["epochs_dense"]["value"] == 0 and "kws.nest" in fb["items"]["epochs_dense"]["label"]
    assert fb["imported_from"] == "tflite"
    assert fb["caveat"] == "our training budget: 2 retraining epochs on 800 samples (row, progressive)"
