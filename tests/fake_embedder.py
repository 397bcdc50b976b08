"""A fast stand-in for the embedding model, for tests about files, not about meaning.

Words are hashed into a small vector: the same text always gets the same vector, and
texts sharing words are close. Tokens are whitespace-separated words.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


class FakeEmbedder:
    name = "fake"
    dimension = 16
    max_tokens = 64
    query_encoder = "fake"
    passage_encoder = "fake"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for word in text.lower().split():
            digest = hashlib.blake2b(word.encode("utf-8", "backslashreplace"), digest_size=2)
            vector[int.from_bytes(digest.digest(), "little") % self.dimension] += 1.0
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector

    def encode_passages(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.vstack([self._vector(t) for t in texts])

    def encode_query(self, text: str) -> np.ndarray:
        return self._vector(text)
