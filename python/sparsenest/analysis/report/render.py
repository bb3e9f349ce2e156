"""report.md and report.html from report.json's dict, through the jinja2 templates in templates/.

Text that comes from a bundle or a build (model, data set and layer names, paths, error messages) reaches
the Markdown only through the environment's `finalize`, which escapes `&`, `<`, `>` and `|`: python-markdown
passes raw HTML through, so a name must never become markup in report.html, nor split a table cell."""
from __future__ import annotations

import html as _html
from pathlib import Path
from typing import Mapping

import jinja2
from markupsafe import Markup

from .breakeven import SEED_CPU_THRESHOLD, SEED_LEA_THRESHOLD
from .provenance import SOURCES, TAGS

TEMPLATES = Path(__file__).resolve().parent / "templates"


def num(v, fmt="{:,.1f}", none="–"):
    return none if v is None else fmt.format(v)


def pct(v, d=1):
    return "–" if v is None else f"{100 * v:.{d}f} %"


def tag(m) -> str:
    return TAGS.get(m["source"], "?") if m else ""


def mv(m, fmt="{:,.1f}"):
    """A measure as 'value [tag]'."""
    return "–" if not m else f"{num(m['value'], fmt)} [{tag(m)}]"


def _escape_text(v):
    if isinstance(v, str) and not isinstance(v, Markup):
        return v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    return v


def _env(autoescape: bool = False) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
                             autoescape=autoescape, finalize=None if autoescape else _escape_text)
    env.filters.update(num=num, pct=pct, tag=tag, mv=mv)
    return env


def sources_used(rep: Mapping) -> list[str]:
    """The sources some number of the report carries, in SOURCES order (the legend lists only these)."""
    used = set()

    def walk(o):
        if isinstance(o, dict):
            s = o.get("source")
            if isinstance(s, str) and s in SOURCES:
                used.add(s)
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk({k: v for k, v in rep.items() if k != "sources"})
    return [k for k in TAGS if k in used]


def _breakeven_rows(rep: Mapping) -> list[dict]:
    """Per matrix layer: the format whose break-even the table shows and which levels run slower than dense."""
    tabs = list(rep["breakeven"]["tables"])
    rows = []
    for ly in rep["layers"]:
        b2 = ly.get("latency_energy_break_even")
        if not b2:
            continue
        fm = ly["format"] if ly["format"] in b2 and "note" not in b2[ly["format"]] else "csr16"
        d = b2[fm]
        bev = d[tabs[-1]]["cpu_latency"]["value"]
        rows.append({"layer": ly["name"], "format": fm + ("" if fm == ly["format"] else f" (layer: {ly['format']})"),
                     "cols": ly["cols"], "sparsities": ly["sparsity"]["value"], "d": d,
                     "slow": [f"L{k + 1}" for k, sp in enumerate(ly["sparsity"]["value"]) if bev is None or sp < bev]})
    return rows


def _seed_reading(rep: Mapping) -> dict | None:
    """The figures the seed-threshold paragraph quotes, and which of ours lie nearest the seed's 4 % / 20 %."""
    be = rep["breakeven"]
    if not be.get("seed_claims"):
        return None
    le, fmts = be["seed_claims"]["analysis"]["lenet5"], be["formats"]

    def g(t, fm, key):
        return le.get(t, {}).get(fm, {}).get(key)
    prim = list(be["tables"])[-1]      # mpy32_calibrated when kernel samples exist, else mpy32_fallback
    cands = [(f"`{t}` {fm} {'sparse vs dense CPU' if key == 'network_cpu' else 'sparse CPU vs dense LEA'}",
              g(t, fm, key)) for t in le for fm in fmts for key in ("network_cpu", "network_lea")]
    cands = [c for c in cands if c[1] is not None]
    near4 = min(cands, key=lambda c: abs(c[1] - SEED_CPU_THRESHOLD)) if cands else None
    near20 = min(cands, key=lambda c: abs(c[1] - SEED_LEA_THRESHOLD)) if cands else None
    k = rep["platform"]["constants"]
    return {"mac_c": k["cpu.mac_c_multiply_cycles"]["value"], "mac_mpy32": k["cpu.mac_mpy32_cycles"]["value"],
            "c_helper": g("c_helper_fallback", "csr16", "network_cpu"),
            "ref_cal": g("ref_calibrated", "csr16", "network_cpu"),
            "mpy32_fb": g("mpy32_fallback", "csr16", "network_cpu"),
            "mpy32_cal": g("mpy32_calibrated", "csr16", "network_cpu"),
            "lea": g(prim, "csr16", "network_lea"), "prim": prim,
            "lea_layers": le.get(prim, {}).get("csr16", {}).get("layers", {}),
            "near4": near4, "near20": near20,
            "reading": ("a sparse vs dense CPU comparison with a cheap hardware multiply-accumulate"
                        if near20 and "dense CPU" in near20[0] else
                        "a sparse CPU kernel against a dense layer on the LEA")}


def render_markdown(rep: Mapping) -> str:
    unc = sorted({n for lv in rep["levels"] for p in lv["predicted"].values()
                  for n in (p["cycles"].get("uncalibrated_layers") or [])})
    return _env().get_template("report.md.j2").render(
        rep=rep, tags=TAGS, sources_used=sources_used(rep), uncalibrated_layers=unc,
        breakeven_rows=_breakeven_rows(rep), seed_reading=_seed_reading(rep))


def render_html(md: str, title: str) -> str:
    """report.md as a standalone HTML page (python-markdown with tables; figures linked relatively)."""
    try:
        import markdown
        body = markdown.markdown(md, extensions=["tables", "fenced_code", "md_in_html"])
    except ImportError:   # still readable without the package
        body = "<pre>" + _html.escape(md) + "</pre>"
    return _env(autoescape=True).get_template("report.html.j2").render(title=title, body=Markup(body))
