"""Jupyter notebooks: keys in code cells, outputs and embedded JSON, located by cell and line
in the cell as well as by file line, column and offset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from keyscan.content import ContentOptions, scan_buffer
from keyscan.detector import Detector
from keyscan.findings import Hit
from keyscan.keygen import generate, key
from keyscan.models import Location
from keyscan.rules import load_rules

DET = Detector(load_rules())


def notebook(cells: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def code(source: list[str], outputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": 1,
        "metadata": {},
        "outputs": outputs or [],
        "source": source,
    }


def md(text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": [text]}


def scan(data: bytes, path: str = "analysis.ipynb", **opts: Any) -> list[Hit]:
    return scan_buffer(DET, data, Location(path, 0, 0, 0), ContentOptions(**opts), errors=[])


def file_pos(data: bytes, needle: bytes) -> tuple[int, int, int]:
    off = data.index(needle)
    line = data.count(b"\n", 0, off) + 1
    col = len(data[data.rfind(b"\n", 0, off) + 1 : off].decode()) + 1
    return off, line, col


def test_key_in_code_cell_located_by_cell_and_file_line() -> None:
    k = key("project", seed=1)
    nb = notebook(
        [
            md("# Setup\n"),
            code(["import os\n"]),
            code(["from openai import OpenAI\n", f'client = OpenAI(api_key="{k}")\n', "x = 1"]),
        ]
    )
    data = json.dumps(nb, indent=1, ensure_ascii=False).encode()
    hits = scan(data)
    assert [h.secret.decode() for h in hits] == [k]
    loc = hits[0].location
    assert loc.extra == {"cell": 3, "cell_line": 2}
    assert (loc.offset, loc.line, loc.column) == file_pos(data, k.encode())
    assert loc.decoded is None


def test_keys_in_outputs_and_embedded_json() -> None:
    k1, k2, k3 = key("svcacct", seed=2), key("admin", seed=3), key("user-none", seed=4)
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": ["loading\n", f"key={k1}\n"]},
        {
            "output_type": "execute_result",
            "execution_count": 2,
            "metadata": {},
            "data": {
                "application/json": {"config": {"api_key": k2}},
                "text/plain": [json.dumps({"token": k3})],
            },
        },
    ]
    nb = notebook([code(["print(cfg)\n"], outputs)])
    data = json.dumps(nb, indent=1).encode()
    hits = {h.secret.decode(): h.location for h in scan(data)}
    assert hits[k1].extra == {"cell": 1, "output": 1, "output_line": 2}
    assert hits[k2].extra["cell"] == 1 and hits[k2].extra["output"] == 2
    assert hits[k3].extra["cell"] == 1 and hits[k3].extra["output"] == 2
    for k, loc in hits.items():
        assert (loc.offset, loc.line, loc.column) == file_pos(data, k.encode())


def test_escaped_context_is_decoded_in_notebooks_only() -> None:
    """JSON-escaped quotes in a source line hide an assignment from a plain text scan; the
    notebook layer decodes the string and finds it. The same bytes as .json: not found."""
    value = generate("{hex:31}7", seed=5)
    line = '{"openai_api_key": "' + value + '"}\n'
    nb = notebook([md("notes"), code(["cfg = json.loads('" + line.strip() + "')\n"])])
    data = json.dumps(nb).encode()  # minified: the whole notebook on one line
    assert b'\\"openai_api_key\\"' in data
    hits = scan(data)
    assert [h.secret.decode() for h in hits] == [value]
    assert hits[0].location.extra == {"cell": 2, "cell_line": 1}
    assert hits[0].location.line == 1
    assert scan(data, path="notebook.json") == []


def test_escaped_key_and_non_ascii_text_before_it() -> None:
    k = key("legacy", seed=6)
    nb = notebook([code(["# café ☕ 🚀\n", "k = '" + k + "'\n"])])
    data = json.dumps(nb, indent=1).encode()  # ensure_ascii: \u00e9, \u2615, surrogates
    data = data.replace(k.encode(), k.replace("-", "\\u002d").encode())
    hits = scan(data)
    assert [h.secret.decode() for h in hits] == [k]
    loc = hits[0].location
    assert loc.extra == {"cell": 1, "cell_line": 2}
    assert loc.decoded == "escape"
    assert data[loc.offset : loc.offset + 2] == b"sk"
    raw = json.dumps(nb, indent=1, ensure_ascii=False).encode()
    (hit,) = scan(raw)
    assert raw[hit.location.offset :].startswith(k.encode())
    assert hit.location.column == file_pos(raw, k.encode())[2]


def test_single_string_source_and_many_cells() -> None:
    keys = [key("project", seed=10 + i) for i in range(3)]
    cells = [code([f"a = {i}\n"]) for i in range(5)]
    cells[1]["source"] = f"x = 1\ny = 2\nKEY = '{keys[0]}'\n"
    cells[4]["source"] = ["\n", "\n", "\n", f"K = '{keys[1]}'  # keyscan:allow\n", keys[2]]
    data = json.dumps(notebook(cells), indent=2).encode()
    hits = {h.secret.decode(): h.location for h in scan(data)}
    assert hits[keys[0]].extra == {"cell": 2, "cell_line": 3}
    assert hits[keys[1]].extra == {"cell": 5, "cell_line": 4}
    assert hits[keys[1]].inline_allowed is True
    assert hits[keys[2]].extra == {"cell": 5, "cell_line": 5}
    assert hits[keys[2]].inline_allowed is False


def test_plain_and_notebook_scan_report_each_key_once() -> None:
    k = key("project", seed=20)
    nb = notebook([code([f"k = '{k}'\n"]), code([f"k2 = '{k}'\n"])])
    data = json.dumps(nb, indent=1).encode()
    hits = scan(data)
    assert [h.location.extra["cell"] for h in hits] == [1, 2]
    # Outside cells (notebook metadata): found plainly, without a cell.
    nb["metadata"]["secret"] = k
    data = json.dumps(nb, indent=1).encode()
    hits = scan(data)
    assert sorted(h.location.extra.get("cell", 0) for h in hits) == [0, 1, 2]


def test_broken_notebook_falls_back_to_plain_scan() -> None:
    k = key("admin", seed=21)
    data = ('{"cells": [{"source": ["k = \'' + k + "'\"]  ").encode()  # truncated
    hits = scan(data)
    assert [h.secret.decode() for h in hits] == [k]
    assert hits[0].location.extra == {}


def test_deeply_nested_notebook_does_not_crash() -> None:
    k = key("project", seed=22)
    data = b'{"cells": [], "x": ' + b"[" * 100000 + b"]" * 100000 + b', "k": "' + k.encode() + b'"}'
    hits = scan(data)
    assert [h.secret.decode() for h in hits] == [k]


def test_cli_json_shows_cell(tmp_path: Path) -> None:
    k = key("svcacct", seed=23)
    nb = notebook([md("hi"), code(["import openai\n", f"openai.api_key = '{k}'\n"])])
    (tmp_path / "nb.ipynb").write_text(json.dumps(nb, indent=1))
    proc = subprocess.run(
        [sys.executable, "-m", "keyscan", "scan", "-f", "json", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert k not in proc.stdout
    (finding,) = json.loads(proc.stdout)["findings"]
    (loc,) = finding["locations"]
    assert loc["extra"] == {"cell": 2, "cell_line": 2}
    assert loc["line"] > 2


def test_text_output_names_the_cell(tmp_path: Path) -> None:
    k1, k2 = key("project", seed=24), key("admin", seed=25)
    out = [{"output_type": "stream", "name": "stdout", "text": [f"{k2}\n"]}]
    nb = notebook([md("x"), md("y"), code(["a = 1\n", f"k = '{k1}'\n"], out)])
    (tmp_path / "nb.ipynb").write_text(json.dumps(nb, indent=1))
    proc = subprocess.run(
        [sys.executable, "-m", "keyscan", "scan", str(tmp_path / "nb.ipynb")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "(cell 3, line 2)" in proc.stdout and "(cell 3, output 1)" in proc.stdout
