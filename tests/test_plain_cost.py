"""Issue 15 "done means": new formats cost nothing on plain source trees. The gate needles are
pieces Hyperscan finds cheaply (no 5-character literal, no piece ending in a line break) that
still cover every break position of a wrapped block (bench/bench_plain_cost.py measures)."""

from __future__ import annotations

import pytest

from keyscan.detector import Detector
from keyscan.formats.decoders import BASE64_GATES, BASE64_NEEDLES, HEX_NEEDLES
from keyscan.keygen import key
from keyscan.rules import load_rules

DET = Detector(load_rules(), accelerate=False)


def test_gate_needles_are_six_characters_or_more_and_none_ends_in_a_line_break() -> None:
    for needle in (*BASE64_GATES, *HEX_NEEDLES):
        assert len(needle) >= 6, needle
        assert needle[-1:] not in (b"\n", b"\r"), needle


def test_codex_pat_rule_keywords_are_not_the_costly_access_token_literal() -> None:
    (rule,) = [r for r in DET.rules if r.id == "codex-personal-access-token"]
    assert all(b"access_token" not in k.lower() for k in rule.keywords)


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
@pytest.mark.parametrize("indent", ["", "  ", "\t", " \t"])
def test_a_line_break_anywhere_in_a_needle_leaves_a_gate_needle_whole(eol: str, indent: str) -> None:
    for needle, _ in BASE64_NEEDLES:
        for p in range(0, len(needle) + 1):
            text = b"xx" + needle[:p] + (eol + indent).encode() + needle[p:] + b"yy"
            _, offsets = DET.scan_keyed(text)
            assert offsets, (needle, p)


def test_hex_of_a_key_is_gated_by_the_hex_of_its_marker() -> None:
    k = key("project", seed=5)
    _, offsets = DET.scan_keyed(k.encode().hex().encode())
    assert offsets
    # The hex of "sk-" alone (a hash, a dump) is no longer a gate.
    assert DET.scan_keyed(b"00736b2d00" * 3)[1] == []


def test_hyperscan_compiles_no_keyword_it_can_pick_out_of_another_ones_hits() -> None:
    """OpenAI (from openai in any case) and .openai.azure. (holds openai) are not compiled:
    one literal more pushed Hyperscan's literal matcher past a bucket limit (~20 ms more on a
    plain 208 MB tree); the answers are the pure-Python plan's, offsets and all."""
    import random

    from keyscan.detector import _HyperscanPlan, _KeywordPlan

    hs = pytest.importorskip("hyperscan", reason="no hyperscan wheel for this platform")
    keywords = DET._keywords
    fast, pure = _HyperscanPlan(hs, keywords), _KeywordPlan(keywords)
    compiled = {k for k, _ in fast.keywords}
    assert b"OpenAI" not in compiled and b".openai.azure." not in compiled
    assert b"openai" in compiled
    pieces = [b"OpenAI", b"openai", b"OPENAI", b"x.OpenAI.Azure.com", b".openai.azure.", b"open",
              b"Open", b"AI.", b"azure.", b"."]  # fmt: skip
    rng = random.Random(7)
    for _ in range(300):
        data = b"".join(rng.choice(pieces) for _ in range(20))
        got, want = fast.find(data), pure.find(data)
        assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in want.items()}
    assert fast.find(b"the OpenAI.azure. at x.openai.azure.com") == pure.find(
        b"the OpenAI.azure. at x.openai.azure.com"
    )
