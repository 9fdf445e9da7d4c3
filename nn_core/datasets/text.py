"""Text -> fixed-width float features for spam filtering, as a model transform.

Hashing (a stable crc32, never Python's salted ``hash()``) maps word unigrams, bigrams and
optionally character n-grams into ``n_features`` buckets, so there is no vocabulary to fit or
store and a saved model featurizes new text exactly as it did in training. Counts get
sublinear tf (1 + log tf) and each row is l2-normalised; a few hand features that mark spam
(length, capitals, URLs, phone numbers, currency, "!") are appended, log1p-scaled.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from typing import Any

import numpy as np

from nn_core.errors import DataError
from nn_core.transforms import Transform, register

CURRENCY = "£$€¥₹"
_URL = r"(?:https?://|www\.)\S+|\b(?:[a-z0-9-]++\.)+(?:com|net|org|biz|info|co\.uk)\b\S*"
_TOKEN = re.compile(rf"{_URL}|[{CURRENCY}]|\d+(?:[.,:]\d+)*|[^\W\d_]+(?:['\u2019][^\W\d_]+)*|!")
_NUMBER_CHARS = "0123456789.,:"
_CAPS = re.compile(r"[A-ZÀ-ÖØ-Þ]+")
_PHONE = re.compile(r"\+?\d(?:[ -]?\d){6,}")

#: Appended after the hashed buckets, in this order. Each is log1p(count) / log1p(typical max)
#: so it sits near [0, 1] like the l2-normalised tf part and neither dominates the first layer.
HAND_FEATURES: tuple[tuple[str, float], ...] = (
    ("length", 500.0),
    ("longest_capital_run", 50.0),
    ("capitals", 100.0),
    ("urls", 5.0),
    ("digits", 50.0),
    ("phone_numbers", 5.0),
    ("currency_symbols", 5.0),
    ("exclamation_marks", 10.0),
)
_HAND_SCALE = np.array([1.0 / math.log1p(ref) for _, ref in HAND_FEATURES])


def tokenize(text: str) -> list[str]:
    """Lowercase tokens: URLs, currency symbols, numbers, words and "!".

    Each number also yields a shape token such as ``<num11>``, and each URL a ``<url>`` token,
    so unseen phone numbers, prices and links still share a feature with ones seen in training.
    """
    tokens: list[str] = []
    for tok in _TOKEN.findall(text.lower()):
        if tok[0].isdigit() and not tok.strip(_NUMBER_CHARS):
            tokens += (tok, f"<num{min(len(tok), 12)}>")
        elif len(tok) > 4 and ("." in tok or "/" in tok):
            tokens += ("<url>", tok)
        else:
            tokens.append(tok)
    return tokens


def hand_features(text: str, tokens: list[str] | None = None) -> list[float]:
    """Raw counts behind HAND_FEATURES (before log1p scaling); `tokens` saves re-tokenizing."""
    if tokens is None:
        tokens = tokenize(text)
    caps = _CAPS.findall(text)
    digits = sum(map(text.count, "0123456789"))
    return [
        float(len(text)),
        float(max(map(len, caps), default=0)),
        float(sum(map(len, caps))),
        float(tokens.count("<url>")),
        float(digits),
        float(len(_PHONE.findall(text))) if digits >= 7 else 0.0,
        float(sum(map(text.count, CURRENCY))),
        float(text.count("!")),
    ]


def _as_texts(x: Any) -> list[str]:
    if isinstance(x, str | bytes):
        raise DataError("X", "must be a list of strings, not a single string")
    arr = np.asarray(x, dtype=object) if not isinstance(x, np.ndarray) else x
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError("X", f"must be a 1-D list of strings, got shape {arr.shape}")
    texts = arr.tolist()
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise DataError("X", f"item {i} is {type(t).__name__}, expected a string")
    return texts


@register
class TextFeatures(Transform):
    """Raw strings -> (n, n_features + hand features) matrix in the requested dtype."""

    name = "text_features"
    raw_input = True

    def __init__(
        self,
        n_features: int = 4096,
        bigrams: bool = True,
        char_ngrams: int = 0,
        hand_features: bool = True,
    ) -> None:
        super().__init__()
        if (
            isinstance(n_features, bool)
            or not isinstance(n_features, int)
            or not 1 <= n_features <= 2**20
        ):
            raise ValueError(f"n_features must be an integer in 1..{2**20}, got {n_features!r}")
        if (
            isinstance(char_ngrams, bool)
            or not isinstance(char_ngrams, int)
            or not 0 <= char_ngrams <= 8
        ):
            raise ValueError(
                f"char_ngrams must be an integer in 0..8 (0 = off), got {char_ngrams!r}"
            )
        if not isinstance(bigrams, bool) or not isinstance(hand_features, bool):
            raise ValueError("bigrams and hand_features must be true or false")
        self.n_features = n_features
        self.bigrams = bigrams
        self.char_ngrams = char_ngrams
        self.hand_features = hand_features
        self.fitted = True  # stateless: nothing is learned from the training texts

    def output_dim(self, input_dim: int) -> int:
        return self.n_features + (len(HAND_FEATURES) if self.hand_features else 0)

    def config(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "n_features": self.n_features,
            "bigrams": self.bigrams,
            "char_ngrams": self.char_ngrams,
            "hand_features": self.hand_features,
        }

    def transform(self, x: Any, dtype: np.dtype[Any]) -> np.ndarray:
        texts = _as_texts(x)
        out = np.zeros((len(texts), self.output_dim(0)), dtype=dtype)
        if not texts:
            return out
        tokens = [tokenize(t) for t in texts]
        rows, cols, values = self._hashed(tokens)
        out[rows, cols] = values
        if self.hand_features:
            counts = np.array([hand_features(t, k) for t, k in zip(texts, tokens, strict=True)])
            out[:, self.n_features :] = np.log1p(counts) * _HAND_SCALE
        return out

    def column_keys(self, text: str) -> dict[int, list[str]]:
        """The feature columns one text lights up, each with the tokens, bigrams, character
        n-grams (prefixed "#") or hand feature names it holds: hashing keeps no vocabulary,
        so an explanation maps columns back to words through the text itself."""
        found: dict[int, list[str]] = {}
        for key in dict.fromkeys(self._keys(tokenize(text))):
            found.setdefault(zlib.crc32(key.encode("utf-8")) % self.n_features, []).append(key)
        if self.hand_features:
            for i, (name, _) in enumerate(HAND_FEATURES):
                found[self.n_features + i] = [f"[{name}]"]
        return found

    def _keys(self, tokens: list[str]) -> list[str]:
        keys = list(tokens)
        if self.bigrams:
            words = [t for t in tokens if t[0] != "<"]
            keys += [f"{a} {b}" for a, b in itertools.pairwise(words)]
        n = self.char_ngrams
        if n:
            for tok in tokens:
                padded = f" {tok} "
                keys += ["#" + padded[i : i + n] for i in range(len(padded) - n + 1)]
        return keys

    def _hashed(self, tokens: list[list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sparse (row, bucket, weight) triples with sublinear tf and unit l2 norm per row."""
        n = self.n_features
        crc32 = zlib.crc32
        flat: list[int] = []
        lengths: list[int] = []
        for toks in tokens:
            buckets = [crc32(k.encode("utf-8")) % n for k in self._keys(toks)]
            flat += buckets
            lengths.append(len(buckets))
        rows = np.repeat(np.arange(len(tokens), dtype=np.int64), lengths)
        keys, counts = np.unique(rows * n + np.array(flat, dtype=np.int64), return_counts=True)
        rows, cols = np.divmod(keys, n)
        weights = 1.0 + np.log(counts)
        norms = np.sqrt(np.bincount(rows, weights=weights**2, minlength=len(tokens)))
        return rows, cols, weights / norms[rows]
