"""No code from data: bundle names never become C code, output paths never reach a shell or make, and
HostSim loads only a library this tool built (issue #11)."""
import json
import os
import re
import subprocess

import numpy as np
import pytest

from sn_compile_helpers import tiny_bundle
from sparsenest.compiler.build import compile_bundle
from sparsenest.compiler.c_text import c_comment, c_ident, c_string
from sparsenest.targets.host import HostSim, HostSimError

# A payload that, pasted raw into a comment or identifier of model.c, defines a constructor that runs
# when the host library is loaded (and would be linked into the firmware).
PAYLOAD = ('*/ __attribute__((constructor)) static void sn_evil(void) { fclose(fopen("PWNED", "w")); } /*'
           '\n#error injected ??/\n"\\ é \u2028 \x00')


def _hostile_bundle():
    b, _ = tiny_bundle(dataset="mnist" + PAYLOAD, name="tiny" + PAYLOAD)
    g = b.manifest["graph"]
    # Node names as a crafted manifest could carry them (Bundle.load may refuse these; codegen must not
    # depend on that): the payload, and two names that differ only in punctuation.
    new = {n["name"]: f"{n['name']}{PAYLOAD}" for n in g["nodes"]}
    new[g["nodes"][0]["name"]] = "9a.b" + PAYLOAD
    new[g["nodes"][-1]["name"]] = "9a_b"
    for n in g["nodes"]:
        n["name"] = new[n["name"]]
        n["inputs"] = [new.get(i, i) for i in n["inputs"]]
    g["output"] = new[g["output"]]
    return b


# The one other directive model.c has: a named buffer (a c_ident name) at a fixed place in an arena.
BUFFER_MACRO = re.compile(r"#define (act|acc|patch|pad)_[A-Za-z0-9_]+ \(\(int(16|32)_t \*\)\(void \*\)"
                          r"\(\(uint8_t \*\)sn_arena_(sram|fram) \+ \d+\)\)\s*")


def _code_only(c_src: str) -> str:
    """C source without comments and string literals."""
    return re.sub(r'/\*.*?\*/|"(?:\\.|[^"\\\n])*"', " ", c_src, flags=re.S)


def test_c_text_escapes():
    for text in (PAYLOAD, "*/", "/*", "a??/b", "??=", "x\\", "\n", "\r", "é", "\U0001f600", "*//*"):
        out = c_comment(text)
        assert out.isascii() and out.isprintable()
        assert "*/" not in out and "/*" not in out and "??" not in out
        body = c_string(text)
        assert body.isascii() and body.isprintable() and '"' not in re.sub(r"\\[0-7]{3}", "", body)
        # the octal escapes read back as the UTF-8 bytes of the text
        raw = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), body.encode("ascii"))
        assert raw == text.encode("utf-8")
    taken: set = set()
    names = [c_ident(n, taken) for n in ("a.b", "a_b", "a-b", "9x", "", "é", "a" * 200)]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,60}", n) for n in names)


def test_hostile_names_never_become_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    b = _hostile_bundle()
    x = np.random.default_rng(0).normal(0, 1, (64, 8)).astype(np.float32)
    info = compile_bundle(b, tmp_path / "build", calib=x)
    src = (tmp_path / "build" / "model.c").read_text()
    hdr = (tmp_path / "build" / "model.h").read_text()
    for text in (src, hdr):
        assert text.isascii()
        code = _code_only(text)
        assert "sn_evil" not in code and "??" not in text
        directives = [ln for ln in code.splitlines() if ln.lstrip().startswith("#")]
        assert all(re.match(r"#(include|define SN_|ifn?def SN_|endif)", ln) or BUFFER_MACRO.fullmatch(ln)
                   for ln in directives), directives
    nm = subprocess.run(["nm", str(info["library"])], capture_output=True, text=True, check=True).stdout
    assert "sn_evil" not in nm
    sim = HostSim(tmp_path / "build")          # loading the library runs no constructor of ours
    assert sim.infer(x[:4]).shape == (4, 3)
    assert not (tmp_path / "PWNED").exists()
    # layer names that differ only in punctuation got distinct C names
    assert len(set(info["meta"]["arrays"])) == len(info["meta"]["arrays"])


@pytest.mark.parametrize("leaf", ["x$(shell touch PWNED)", "with space", "q'uo\"te", "semi;touch PWNED2"])
def test_output_paths_are_not_shell_or_make(tmp_path, monkeypatch, leaf):
    monkeypatch.chdir(tmp_path)
    b, x = tiny_bundle()
    out = tmp_path / "a $(touch PWNED3)" / leaf
    info = compile_bundle(b, out, calib=x)
    assert info["library"] == out / "libsnmodel.so" and (out / "sn_cli").exists()
    assert HostSim(out).infer(x[:2]).shape == (2, 3)
    assert not [p for p in tmp_path.rglob("PWNED*")], "a path ran a command"


def _small_build(tmp_path):
    b, x = tiny_bundle()
    return compile_bundle(b, tmp_path / "b", calib=x)


def test_hostsim_loads_only_the_library_it_built(tmp_path):
    info = _small_build(tmp_path)
    meta = json.loads((tmp_path / "b" / "model_meta.json").read_text())
    assert meta["host_build"]["sha256"] and meta["format"] == "sparsenest-build"
    lib = info["library"]
    lib.write_bytes(lib.read_bytes() + b"\0")            # any change to the library
    with pytest.raises(HostSimError, match="sha256"):
        HostSim(tmp_path / "b")
    # a folder with a library but not our metadata marker
    other = tmp_path / "other"
    other.mkdir()
    (other / "libsnmodel.so").write_bytes(lib.read_bytes())
    (other / "model_meta.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(HostSimError, match="not a sparsenest build"):
        HostSim(other)


def test_hostsim_refuses_build_without_recorded_hash(tmp_path):
    _small_build(tmp_path)
    mp = tmp_path / "b" / "model_meta.json"
    meta = json.loads(mp.read_text())
    del meta["host_build"]
    mp.write_text(json.dumps(meta))
    with pytest.raises(HostSimError, match="missing"):
        HostSim(tmp_path / "b")
    assert os.path.exists(tmp_path / "b" / "libsnmodel.so")   # refused, not deleted
