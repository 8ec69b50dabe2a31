"""The metadata redactor's batch (``Redactor.texts``): one keyword pass over a whole list of
strings (a scan's stats list every ref it started from: thousands), then each string scanned
only when a keyword occurs somewhere. It answers exactly what ``text`` answers one by one."""

from __future__ import annotations

import json
import random

from keyscan.keygen import key
from keyscan.models import redact
from keyscan.redaction import Redactor
from keyscan.rules import load_rules

REDACTOR = Redactor(load_rules())


def _ids(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choice("0123456789abcdef") for _ in range(40)) for _ in range(n)]


def test_texts_answers_as_text_one_by_one() -> None:
    rng = random.Random(16)
    secret, other = key("project", seed=1), key("svcacct", seed=2)
    lists: list[list[str]] = [
        [],
        ["only one"],
        _ids(rng, 500),
        [*_ids(rng, 300), f"refs/heads/{secret}", *_ids(rng, 300)],
        [f"a {secret} b {other}", "caf\udce9", "", "plain"],
        ["caf\udce9", "na\udcefve", *_ids(rng, 10)],  # undecodable bytes, no keyword
        ["sk-", "proj-", "OPENAI_API_KEY", "="],  # keywords alone, no key
        [secret[:20], secret[20:]],  # a key cut in two strings is no key in either
        [f"{secret}\0{other}", "x"],
    ]
    for values in lists:
        assert REDACTOR.texts(values) == [REDACTOR.text(v) for v in values], values
    out = REDACTOR.texts(lists[3])
    assert f"refs/heads/{redact(secret)}" in out and secret not in "".join(out)


def test_a_key_among_thousands_of_refs_is_redacted_anywhere_in_the_stats() -> None:
    rng = random.Random(17)
    secret = key("admin", seed=3)
    stats = {
        "heads": [*_ids(rng, 4000), f"refs/tags/{secret}"],
        "excluded": tuple(_ids(rng, 50)),
        "nested": {"refs": [*_ids(rng, 5), f"x{secret}"], "count": 3, "names": ["caf\udce9", "b"]},
    }
    out = REDACTOR.value(stats)
    text = json.dumps(out)
    assert secret not in text and text.count(redact(secret)) == 2
    assert out["heads"][:4000] == stats["heads"][:4000]
    assert out["excluded"] == list(stats["excluded"])
    assert out["nested"]["names"] == ["caf\\xe9", "b"] and out["nested"]["count"] == 3


def test_show_secrets_keeps_keys_and_still_escapes_undecodable_bytes() -> None:
    secret = key("project", seed=4)
    shown = Redactor(load_rules(), show_secrets=True)
    assert shown.texts([secret, "caf\udce9", *_ids(random.Random(5), 3)])[:2] == [
        secret,
        "caf\\xe9",
    ]
