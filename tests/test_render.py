"""One renderer of a result (``limitproc.io.render.render_result_parts``): what ``solve`` and ``demo`` write."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import run_cli

from limitproc import generate, solve
from limitproc.clitools import write_output
from limitproc.flow.ties import solve_resolved
from limitproc.io.render import render_result, render_result_parts
from limitproc.io.results import result_dict
from limitproc.io.tables import jump_table

TABLES = ("csv", "latex", "markdown")


@pytest.fixture(scope="module")
def resolved():
    """A problem with magnitudes whose overlapping tie is resolved (the resolution edits JSON and text)."""
    resolved = solve_resolved(generate(30, 6, seed=3, magnitudes=True))
    assert resolved.ties is not None
    return resolved


def test_json_is_the_dict_of_the_result_and_its_resolution(resolved):
    result, ties = resolved.result, resolved.ties
    parts = render_result_parts(result, "json", 20, ties=ties)
    assert b"".join(parts) == (json.dumps(ties.annotate(result_dict(result, 20))) + "\n").encode()
    data = json.loads(b"".join(parts))
    assert data["sq_norm_resolved"] == ties.sq_norm and data["n"] == 30 and data["m"] == 6
    without = json.loads(b"".join(render_result_parts(result, "json", 20)))
    assert without["sq_norm_resolved"] is None and without["jumps"][0]["tau"] == data["jumps"][0]["tau"]


def test_escape_directions_are_in_the_json_only(resolved):
    result = resolved.result
    data = json.loads(render_result(result, "json", escape_directions=True))
    assert [len(j["escape_directions"]) for j in data["jumps"]] == [len(j.neurons) for j in result.jumps]
    assert render_result(result, "csv", escape_directions=True) == render_result(result, "csv")


@pytest.mark.parametrize("fmt", TABLES)
def test_table_formats_are_the_jump_table(resolved, fmt):
    result = resolved.result
    assert render_result_parts(result, fmt, 12) == [jump_table(result, 12).render(fmt).encode()]


def test_text_is_the_table_then_the_summary(resolved):
    text = render_result(resolved.result, "text", ties=resolved.ties)
    table, summary = text.split("\n\n", 1)
    assert table.startswith("k  tau") and len(table.splitlines()) == 2 + len(resolved.result.jumps)
    assert "resolved from the initial magnitudes" in summary and text.endswith("\n")


def test_json_parts_keep_long_index_arrays_unjoined():
    result = solve(generate(600, 2, seed=1))
    parts = render_result_parts(result, "json")
    assert any(isinstance(p, np.ndarray) for p in parts)  # the bytes numpy wrote, not a copy of the text
    assert json.loads(b"".join(parts))["uncovered"] == result.uncovered.tolist()


def test_json_does_not_load_the_tables():
    code = (
        "import sys; from limitproc import generate, solve; from limitproc.io.render import render_result_parts; "
        "r = solve(generate(20, 3, seed=2)); render_result_parts(r, 'json'); a = 'limitproc.io.tables' in sys.modules; "
        "render_result_parts(r, 'csv'); print(a, 'limitproc.io.tables' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False True\n"


@pytest.mark.parametrize("fmt", ("text", "json", "csv", "latex"))
def test_demo_is_solve_of_its_problem(capsys, tmp_path, fmt):
    """``demo`` is ``solve`` of generate(n=64, m=12, ±1 labels, seed 7), with a title above the text."""
    path = tmp_path / "demo.json"
    assert run_cli(capsys, "generate", "--n", 64, "--m", 12, "--labels", "pm1", "--seed", 7, "-o", path)[0] == 0
    code, solved, _ = run_cli(capsys, "solve", path, "--format", fmt)
    assert code == 0 and solved
    title = "limitproc demo: generate(n=64, m=12, labels='pm1', seed=7)\n\n" if fmt == "text" else ""
    assert run_cli(capsys, "demo", "--format", fmt) == (0, title + solved, "")


class _Recording(io.BytesIO):
    def __init__(self):
        super().__init__()
        self.writes = []

    def write(self, data):
        self.writes.append(bytes(data))
        return super().write(data)


def test_stdout_gets_the_parts_one_by_one(monkeypatch):
    raw = _Recording()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BufferedWriter(raw, buffer_size=2), encoding="utf-8"))
    sys.stdout.write("τ ")  # text written before the parts comes first
    write_output([b"[1, ", np.frombuffer(b"22, 3", np.uint8), "é]\n".encode()], None)
    assert raw.writes == ["τ ".encode(), b"[1, ", b"22, 3", "é]\n".encode()]  # never joined into one write


def test_a_file_gets_the_parts_atomically(tmp_path):
    path = tmp_path / "out.json"
    write_output([b"[1, ", np.frombuffer(b"22]", np.uint8), b"\n"], str(path))
    assert path.read_bytes() == b"[1, 22]\n" and [p.name for p in tmp_path.iterdir()] == ["out.json"]
