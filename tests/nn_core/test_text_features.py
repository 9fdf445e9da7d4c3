"""The hashed text featurizer: stable buckets, normalisation, hand features, config round trip."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

from nn_core.datasets.text import HAND_FEATURES, TextFeatures, hand_features, tokenize
from nn_core.errors import DataError, SpecError
from nn_core.preprocessing import TRANSFORMS, build_transform

F32 = np.dtype(np.float32)
N_HAND = len(HAND_FEATURES)


def test_registered_as_a_raw_input_transform() -> None:
    assert TRANSFORMS["text_features"] is TextFeatures
    assert TextFeatures.raw_input


def test_tokens_cover_words_numbers_urls_currency() -> None:
    tokens = tokenize("WIN £1000 now!! Call 08712460324 or visit www.Prize.com, it's FREE")
    assert tokens == [
        "win",
        "£",
        "1000",
        "<num4>",
        "now",
        "!",
        "!",
        "call",
        "08712460324",
        "<num11>",
        "or",
        "visit",
        "<url>",
        "www.prize.com,",
        "it's",
        "free",
    ]
    assert tokenize("") == []
    assert tokenize("Ünïcödé straße 😀") == ["ünïcödé", "straße"]


def test_hand_feature_counts() -> None:
    text = "FREE entry!! Txt WIN to 87121 or call 0800 123 4567, £5 http://x.co/a"
    counts = dict(zip([n for n, _ in HAND_FEATURES], hand_features(text), strict=True))
    assert counts == {
        "length": len(text),
        "longest_capital_run": 4,
        "capitals": 8,
        "urls": 1,
        "digits": 17,
        "phone_numbers": 1,
        "currency_symbols": 1,
        "exclamation_marks": 2,
    }


def test_output_shape_dtype_and_unit_norm() -> None:
    t = TextFeatures(n_features=64)
    texts = ["hello there", "", "WINNER!!! claim £900 at www.win.com", "ünïcödé 😀"]
    out = t.transform(texts, F32)
    assert out.dtype == np.float32
    assert out.shape == (4, 64 + N_HAND) == (4, t.output_dim(1))
    norms = np.linalg.norm(out[:, :64], axis=1)
    np.testing.assert_allclose(norms, [1, 0, 1, 1], atol=1e-6)
    assert (out[1] == 0).all()  # empty string: no tokens, all counts zero
    assert t.transform(np.array(texts), np.dtype(np.float64)).dtype == np.float64


def test_buckets_are_crc32_with_sublinear_tf() -> None:
    t = TextFeatures(n_features=1 << 16, bigrams=False, hand_features=False)
    row = t.transform(["spam spam spam eggs"], F32)[0]
    spam, eggs = zlib.crc32(b"spam") % (1 << 16), zlib.crc32(b"eggs") % (1 << 16)
    assert np.count_nonzero(row) == 2
    expected = np.array([1 + math.log(3), 1.0])
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(row[[spam, eggs]], expected, rtol=1e-6)


def test_bigrams_and_char_ngrams_add_features() -> None:
    text = ["free prize waiting"]
    plain = TextFeatures(n_features=1 << 16, bigrams=False, hand_features=False).transform(
        text, F32
    )
    bi = TextFeatures(n_features=1 << 16, hand_features=False).transform(text, F32)
    chars = TextFeatures(n_features=1 << 16, char_ngrams=3, hand_features=False).transform(
        text, F32
    )
    assert np.count_nonzero(plain) == 3
    assert np.count_nonzero(bi) == 5
    assert np.count_nonzero(chars) > np.count_nonzero(bi)


def test_hashing_is_stable_across_processes() -> None:
    # Python's str hash is salted per process; the featurizer must not depend on it.
    code = (
        "import numpy as np; from nn_core.datasets.text import TextFeatures;"
        "print(np.flatnonzero(TextFeatures(n_features=512).transform(['Call now to win'],"
        " np.dtype('float32'))[0]).tolist())"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1


@pytest.mark.parametrize(
    "config",
    [
        {"type": "text_features"},
        {
            "type": "text_features",
            "n_features": 256,
            "bigrams": False,
            "char_ngrams": 4,
            "hand_features": False,
        },
    ],
)
def test_config_round_trip(config: dict[str, object]) -> None:
    t = build_transform(config)
    again = build_transform(t.config())
    assert again.config() == t.config()
    assert {k: v for k, v in t.config().items() if k in config} == config
    assert t.state() == {}
    texts = ["one two", "three!"]
    np.testing.assert_array_equal(again.transform(texts, F32), t.transform(texts, F32))


@pytest.mark.parametrize(
    "config",
    [
        {"n_features": 0},
        {"n_features": 2.5},
        {"n_features": True},
        {"char_ngrams": -1},
        {"bigrams": "yes"},
        {"vocabulary": 10},
    ],
)
def test_bad_config_is_a_spec_error(config: dict[str, object]) -> None:
    with pytest.raises(SpecError, match="bad parameters for 'text_features'"):
        build_transform({"type": "text_features", **config})


@pytest.mark.parametrize("bad", ["just one string", [1, 2], ["ok", None], [["a", "b"]]])
def test_non_text_input_is_a_data_error(bad: object) -> None:
    with pytest.raises(DataError):
        TextFeatures().transform(bad, F32)


def test_zero_rows() -> None:
    assert TextFeatures(n_features=8).transform([], F32).shape == (0, 8 + N_HAND)
