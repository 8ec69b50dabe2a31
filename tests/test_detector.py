"""The detector: every family at every boundary, and nothing that is not an OpenAI key.

Every key is generated at run time (keyscan.keygen): the repository holds no literal key.
"""

from __future__ import annotations

import random

import pytest

from keyscan.detector import Detector, resolve_overlaps, shannon_entropy
from keyscan.keygen import EXPECTED_FAMILY, FAMILY_TEMPLATES, MARKER, generate, key
from keyscan.models import Confidence
from keyscan.rules import load_rules


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(load_rules())


# What may stand right before and right after a key (@), in real files.
BOUNDARIES = [
    '"@"', "'@'", "`@`", "(@)", "<@>", "{@}", "[@]", "@,", "@;", "@.",
    "@&x=1", '\\"@\\"', "%22@%22", "=@", ":@", "@", "\n@\n", "@\r\n", "x@_",
    "_@_", "*@*", "@-", "@\\n", "\\u0022@\\u0022", "\x00@\x00", "«@»", "“@”",
    "task-@", "my-sk-@", "sk-@", "ask-sk-@|", "Bearer @", "?key=@#", "@ @",
]  # fmt: skip


@pytest.mark.parametrize("family", sorted(FAMILY_TEMPLATES))
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_every_family_found_exactly_at_every_boundary(
    detector: Detector, family: str, boundary: str
) -> None:
    rng = random.Random(f"{family}{boundary}")
    for _ in range(40):
        k = key(family, rng=rng)
        text = boundary.replace("@", k)
        matches = detector.scan(text.encode())
        assert len(matches) == boundary.count("@"), (family, text)
        for m in matches:
            assert m.secret == k.encode(), (family, boundary)
            assert m.family == EXPECTED_FAMILY[family]
            assert text.encode()[m.start : m.end] == k.encode()


@pytest.mark.parametrize("half", [20, 33, 46, 58, 64, 74, 80])
@pytest.mark.parametrize("prefix", ["sk-proj-", "sk-svcacct-", "sk-admin-", "sk-None-"])
def test_any_future_half_length(detector: Detector, prefix: str, half: int) -> None:
    rng = random.Random(half)
    for _ in range(30):
        k = generate(f"{prefix}{{b64url:{half}}}{{marker}}{{b64url:{half}}}", rng=rng)
        (m,) = detector.scan(f"KEY={k}\n".encode())
        assert m.secret == k.encode()
        assert m.rule.confidence == Confidence.HIGH


def test_key_halves_may_start_and_end_with_dash_or_underscore(detector: Detector) -> None:
    rng = random.Random(1)
    for _ in range(200):
        left = "-" + generate("{b64url:72}", rng=rng) + "_"
        right = "_" + generate("{b64url:72}", rng=rng) + "-"
        k = f"sk-proj-{left}{MARKER}{right}"
        (m,) = detector.scan(f'x="{k}"'.encode())
        assert m.secret == k.encode()


def test_trailing_dash_or_underscore_is_not_part_of_a_key(detector: Detector) -> None:
    k = key("project", seed=3)
    for text in (f"{k}_", f"{k}-", f"{k}__old", f"_{k}_"):
        (m,) = detector.scan(text.encode())
        assert m.secret == k.encode()


def test_named_key_may_be_called_example_or_test(detector: Detector) -> None:
    rng = random.Random(5)
    for name in ("example", "test", "your-app", "sample-bot"):
        k = generate(f"sk-{name}-{{alnum:20}}{{marker}}{{alnum:20}}", rng=rng)
        (m,) = detector.scan(k.encode())
        assert m.secret == k.encode()
        assert m.rule.id == "openai-named-key"


def test_unknown_future_format_found_at_medium(detector: Detector) -> None:
    k = generate("sk-team-{b64url:90}{marker}{b64url:90}", seed=2)
    (m,) = detector.scan(k.encode())
    assert m.rule.id == "openai-key"
    assert m.rule.confidence == Confidence.MEDIUM
    assert m.family == "unknown"


def test_marker_less_key_found_at_low_with_family(detector: Detector) -> None:
    k = generate("sk-svcacct-{b64url:80}9{b64url:80}", seed=4)
    (m,) = detector.scan(f"token: {k}\n".encode())
    assert (m.rule.id, m.family, m.rule.confidence) == (
        "openai-key-no-marker",
        "service_account",
        Confidence.LOW,
    )


NOT_KEYS = [
    # placeholders
    "sk-...",
    "sk-proj-...",
    "sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "sk-your-key-here",
    "OPENAI_API_KEY=sk-proj-your-api-key-goes-here-and-nowhere-else",
    "sk-proj-{X:74}{marker}{X:74}",
    "sk-{x:20}{marker}{x:20}",
    "sk-abcdefghijklmnopqrst{marker}uvwxyz0123456789ABCD",
    "sk-proj-{0:120}",
    "sk-proj-{lit:*}{lit:*}{lit:*}{lit:*}{lit:*}{alnum:30}",
    # other vendors
    "sk-ant-api03-{b64url:93}AA",
    "sk-or-v1-{hex:64}",
    "sk-{hex:32}",
    "{lit:sk_live_}{alnum:24}",
    "{lit:sk_test_}{alnum:24}",
    "{lit:rk_live_}{alnum:24}",
    "gsk_{alnum:52}",
    "hf_{alnum:34}",
    # context, never findings
    "org-{alnum:24}",
    "proj_{alnum:24}",
    "req_{hex:32}",
]


@pytest.mark.parametrize("template", NOT_KEYS)
@pytest.mark.parametrize(
    "context",
    ["{}", 'OPENAI_API_KEY="{}"', "openai.api_key = '{}'", 'client = OpenAI(api_key="{}")'],
)
def test_not_reported(detector: Detector, template: str, context: str) -> None:
    rng = random.Random(template)
    for _ in range(10):
        value = generate(template, rng=rng)
        text = context.replace("{}", value)
        assert detector.scan(text.encode()) == [], text


def test_session_token_shape_is_exact(detector: Detector) -> None:
    rng = random.Random(3)
    (m,) = detector.scan(generate("Authorization: Bearer sess-{alnum:40}", rng=rng).encode())
    assert m.rule.id == "openai-session-token"
    for template in ("sess-{alnum:41}", "xsess-{alnum:40}", "sess-{a:40}"):
        assert detector.scan(generate(template, rng=rng).encode()) == []


AZURE_AND_CONTEXT = [
    ("AZURE_OPENAI_API_KEY={hex:32}", "azure"),
    ('AZURE_OPENAI_KEY: "{hex:32}"', "azure"),
    ('os.environ["AZURE_OPENAI_API_KEY"] = "{hex:32}"', "azure"),
    ('OPENAI_API_KEY = "{b64:84}"\nendpoint = "https://x.openai.azure.com/"', "azure"),
    ('client = AzureOpenAI(azure_endpoint=e, api_key="{hex:32}")', "azure"),
    ('const c = new OpenAI({{ apiKey: "{b64url:48}7" }});', "unknown"),
    ('{{"openaiApiKey": "{b64url:40}7"}}', "unknown"),
    ("export OPENAI_TOKEN={b64url:40}7", "unknown"),
    ('"source": ["openai.api_key = \\"{b64url:40}7\\"\\n"]', "unknown"),
]


@pytest.mark.parametrize(("template", "family"), AZURE_AND_CONTEXT)
def test_high_entropy_value_of_openai_name_found_at_low(
    detector: Detector, template: str, family: str
) -> None:
    rng = random.Random(template)
    for _ in range(20):
        text = generate(template, rng=rng)
        (m,) = detector.scan(text.encode())
        if m.rule.id == "azure-openai-key-by-endpoint":
            # issue 15: an 84-character alphanumeric value near an Azure endpoint is the
            # Azure key form, found at medium by context
            assert m.rule.confidence == Confidence.MEDIUM
        else:
            assert m.rule.confidence == Confidence.LOW
        assert m.family == family, text
        assert m.secret.decode() in text


CONTEXT_NEGATIVES = [
    "OPENAI_API_KEY=${OPENAI_API_KEY}",
    'OPENAI_API_KEY = os.environ["OPENAI_API_KEY"]',
    "OPENAI_API_KEY: ${{ secrets.OPENAI_API_KEY }}",
    "OPENAI_API_KEY=<your-openai-api-key>",
    "OPENAI_API_KEY=your-openai-api-key-here",
    "OPENAI_API_KEY = get_openai_key_from_vault(name)",
    "openai_api_key = settings.OPENAI_API_KEY_FROM_ENVIRONMENT",
    'OPENAI_API_KEY_SHA256 = "{hex:64}"',
    'OPENAI_MODEL_ID = "{hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}"',
    'OPENAI_API_KEY = "{hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}"',
    'commit = "{hex:40}"  # near OPENAI_API_KEY',
    'OPENAI_API_KEY="aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"',
    'OPENAI_API_KEY="0000000000000000000000000000000000"',
    'OPENAI_ORG_ID="org-{alnum:24}"',
    'OPENAI_PROJECT_ID="proj_{alnum:24}"',
]


@pytest.mark.parametrize("template", CONTEXT_NEGATIVES)
def test_context_rules_ignore_references_hashes_and_ids(detector: Detector, template: str) -> None:
    rng = random.Random(template)
    for _ in range(20):
        text = generate(template, rng=rng)
        assert detector.scan(text.encode()) == [], text


def test_entropy() -> None:
    assert shannon_entropy(b"") == 0.0
    assert shannon_entropy(b"aaaa") == 0.0
    assert shannon_entropy(b"abcd") == pytest.approx(2.0)
    assert shannon_entropy(key("project", seed=1).encode()) > 5.0


def test_overlaps_keep_the_most_confident(detector: Detector) -> None:
    # A marker key assigned to OPENAI_API_KEY matches three rules; one match survives.
    k = key("project", seed=9)
    (m,) = detector.scan(f'OPENAI_API_KEY="{k}"'.encode())
    assert m.rule.id == "openai-project-key"
    assert resolve_overlaps([]) == []


def test_many_keys_in_one_buffer_all_found(detector: Detector) -> None:
    rng = random.Random(7)
    keys = [key(f, rng=rng) for f in sorted(FAMILY_TEMPLATES) for _ in range(20)]
    text = "\n".join(f"k{i} = '{k}'" for i, k in enumerate(keys))
    found = [m.secret.decode() for m in detector.scan(text.encode())]
    assert found == keys


def test_binary_bytes_around_a_key(detector: Detector) -> None:
    k = key("svcacct", seed=2).encode()
    data = bytes(range(256)) * 4 + k + b"\xff\xfe\x00" + bytes(range(256))
    (m,) = detector.scan(data)
    assert m.secret == k
    assert m.start == 1024


def test_hyperscan_and_pure_python_plans_find_the_same_keywords() -> None:
    """The accelerated keyword plan (Hyperscan, where installed) and the pure-Python one give
    exactly the same offsets, including case-insensitive and prefix-sharing keywords."""
    from keyscan.detector import _HyperscanPlan, _KeywordPlan

    hs = pytest.importorskip("hyperscan", reason="no hyperscan wheel for this platform")
    rules = load_rules()
    keywords = sorted({(k, r.keywords_ignore_case) for r in rules for k in r.keywords})
    fast, pure = _HyperscanPlan(hs, keywords), _KeywordPlan(keywords)
    rng = random.Random(31)
    pieces = [b"sk-proj-", b"sk-admin-", b"sk-", b"task-", b"OpenAI", b"OPENAI", b"open_ai",
              b"Open-AI", b"openai", b"sess-", b"T3BlbkFJ", b"T3Blbk", b"\x00", b"\n", b"x" * 7,
              b".openai.azure.", b".OpenAI.Azure.", b".openai.", b"azure.",
              b".CognitiveServices.azure.", b".cognitiveservices."]  # fmt: skip
    for _ in range(300):
        data = b"".join(rng.choice(pieces) + rng.randbytes(rng.randint(0, 5)) for _ in range(60))
        got, want = fast.find(data), pure.find(data)
        assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in want.items()}


@pytest.mark.parametrize("accelerate", [True, False])
def test_both_plans_find_every_family(accelerate: bool) -> None:
    if accelerate:
        pytest.importorskip("hyperscan", reason="no hyperscan wheel for this platform")
    det = Detector(load_rules(), accelerate=accelerate)
    rng = random.Random(32)
    keys = [key(f, rng=rng) for f in sorted(FAMILY_TEMPLATES)]
    text = (
        "\n".join(f"x{i} = '{k}'" for i, k in enumerate(keys))
        + "\nOPENAI_API_KEY="
        + (generate("{hex:32}", rng=rng))
    )
    found = [m.secret.decode() for m in det.scan(text.encode())]
    assert found[: len(keys)] == keys
    assert len(found) == len(keys) + 1


def test_pure_python_plan_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from keyscan.detector import ACCELERATE_AFTER, _KeywordPlan

    monkeypatch.setenv("KEYSCAN_PURE_PYTHON", "1")
    det = Detector(load_rules())
    det.scan(b"x" * ACCELERATE_AFTER)
    assert isinstance(det._plan, _KeywordPlan)


def test_hyperscan_takes_over_after_the_first_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small scans (a pre-commit run) never pay Hyperscan's start-up; large ones switch."""
    pytest.importorskip("hyperscan", reason="no hyperscan wheel for this platform")
    monkeypatch.delenv("KEYSCAN_PURE_PYTHON", raising=False)  # CI runs this file both ways
    from keyscan.detector import ACCELERATE_AFTER, _HyperscanPlan, _KeywordPlan

    det = Detector(load_rules())
    k = key("project", seed=33)
    (m,) = det.scan(f"a = '{k}'".encode())
    assert isinstance(det._plan, _KeywordPlan)
    det.scan(b"y" * ACCELERATE_AFTER)
    assert isinstance(det._plan, _HyperscanPlan)
    (m2,) = det.scan(f"a = '{k}'".encode())
    assert (m2.start, m2.secret) == (m.start, m.secret)
