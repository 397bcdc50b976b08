"""Questions through the transformer compiled ahead of time (PyTorch's AOTInductor).

A question is a few dozen word pieces. For so short an input the matrix products are a
small part of the work: the rest is the casts, layer norms, softmax and GELU between them,
each a separate kernel call in eager PyTorch or a TorchScript graph. ``torch.export`` and
AOTInductor compile the library's own transformer module into one shared library that
fuses those steps (measured on this project's questions: 7.2 against 12.6 ms p50 for the
traced graph, vectors at cosine ≥ 0.99998; BENCHMARKS.md). Compiling takes a C++
compiler and about half a minute of both cores, so it is done once per model, precision,
PyTorch version and CPU, and the package is kept in the model cache
(``$QA_MODEL_CACHE/compiled/``), written atomically and keyed by a digest of all of these,
so a package is never run on weights or a CPU it was not built for.

The package runs from a question's word vectors to its sentence vector: the transformer
and the model's own modules after it (pooling, normalisation). The word-embedding table
(250,000 rows for a multilingual model) stays outside: that keeps the package at the size
of the transformer layers (46 MB for multilingual-e5-small, not 430). Whoever holds the
model looks a question's rows up in it; a worker that need not load the model reads them
from the model's own weights file (:mod:`qa_service.question_encoder`).

Nothing here is required: when there is no compiler, ``torch.export`` cannot capture a
model, or a package fails to load, the caller keeps the traced graph and says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .bundled_model import VERIFIED, default_cache_dir

logger = logging.getLogger(__name__)

#: Bumped when what a package holds or how it is called changes (2: the sentence vector
#: out, pooling and normalisation inside).
PACKAGE_FORMAT = 2
#: The longest input a package accepts (the model's window is at most this).
MAX_TOKENS = 512

Runner = Callable[[Any], Any]


def cpu_signature() -> str:
    """What the compiled code depends on in this CPU: its instruction-set flags."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("flags"):
                return " ".join(sorted(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()}"


def package_key(transformer: Any, precision: str, after: Sequence[Any] = ()) -> str:
    """A digest of everything a compiled package depends on.

    The transformer's weights (as they are held, after the precision's conversion), its
    configuration, the modules compiled after it (pooling, normalisation, …: each one's
    type, configuration and weights), the precision, the versions of PyTorch and of the
    library whose modules are compiled, this CPU's flags and the format.
    """
    import torch

    digest = hashlib.sha256()
    config = getattr(transformer, "config", None)
    header = {
        "format": PACKAGE_FORMAT,
        "torch": torch.__version__,
        "libraries": library_versions(),
        "precision": precision,
        "module": type(transformer).__qualname__,
        "config": config.to_json_string() if config is not None else "",
        "after": [[type(module).__qualname__, _module_config(module)] for module in after],
        "cpu": cpu_signature(),
    }
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for module in (transformer, *after):
        for name, tensor in module.state_dict().items():
            digest.update(name.encode())
            digest.update(str(tensor.dtype).encode())
            digest.update(str(tuple(tensor.shape)).encode())
            data = tensor.detach().contiguous().cpu().reshape(-1)
            digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _module_config(module: Any) -> Any:
    """A sentence-transformers module's configuration (its pooling mode, …), if it has one."""
    getter = getattr(module, "get_config_dict", None)
    return getter() if callable(getter) else None


#: The libraries whose code a package or a question path holds or was checked against.
LIBRARIES = ("transformers", "sentence-transformers", "tokenizers")


def library_versions() -> dict[str, str]:
    """The installed versions of :data:`LIBRARIES` (read without importing them)."""
    from importlib import metadata

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = ""
    return versions


def key_record(model_dir: Path, precision: str, cache: Path | None = None) -> Path:
    """Where what is known of ``model_dir``'s files as they are now is kept: the package
    key and how its questions are encoded without the library (:func:`cached_package_key`).

    Named by a digest of the directory's files (names, sizes, modification times and
    inodes; not the bundled model's own records, nor hidden files), the precision, the
    versions of PyTorch, of this package and of the model's libraries, and the CPU's
    flags, all read without loading the model: a file changed, rebuilt or replaced as
    files are (a new file, or a new modification time) names another record.
    """
    import torch

    from . import __version__

    files = sorted(
        (str(path.relative_to(model_dir)), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        for path in model_dir.rglob("*")
        if not path.name.startswith(".")
        and path.name != VERIFIED  # the bundled model's record of its own check
        and path.is_file()
        and (stat := path.stat())
    )
    state = {
        "format": PACKAGE_FORMAT,
        "qa_service": __version__,
        "torch": torch.__version__,
        "libraries": library_versions(),
        "precision": precision,
        "cpu": cpu_signature(),
        "directory": str(model_dir.resolve()),
        "files": files,
    }
    digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()
    return (cache or default_cache_dir()) / "compiled" / "keys" / f"{digest[:32]}.json"


def read_record(record: Path) -> dict[str, Any]:
    """A key record's content (empty when absent or unreadable); its key checked."""
    try:
        content = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    key = content.get("key") if isinstance(content, dict) else None
    if not isinstance(key, str) or len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        return {}
    return content


def write_record(record: Path, content: dict[str, Any]) -> None:
    """Add ``content`` to a key record, atomically; what another process wrote meanwhile
    under another name is kept (a key written late does not drop a description). A
    read-only cache is logged (computed again next time)."""
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        known = read_record(record)
        if known.get("key", content.get("key")) != content.get("key"):
            known = {}  # another key: the record is this one's alone
        merged = {**known, **content}
        tmp = record.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, record)
    except OSError as exc:
        logger.info("the package key is not kept (%s)", exc)


def cached_package_key(
    transformer: Any,
    precision: str,
    model_dir: Path | None,
    cache: Path | None = None,
    after: Sequence[Any] = (),
) -> str:
    """:func:`package_key`, remembered for a model directory as its files are now.

    Computing the key reads every weight (0.56 s for multilingual-e5-small, in each worker
    at every start). The weights as held are a function of the directory's files, the
    precision, PyTorch's and this package's versions (the conversion is this package's
    code), so the key is kept in the directory's :func:`key_record`. A model named
    otherwise than by a directory (a hub name) has its key computed each time.
    """
    if model_dir is None or not model_dir.is_dir():
        return package_key(transformer, precision, after)
    record = key_record(model_dir, precision, cache)
    known = read_record(record)
    if known:
        return str(known["key"])
    key = package_key(transformer, precision, after)
    write_record(record, {"key": key})
    return key


def package_path(key: str, cache: Path | None = None) -> Path:
    return (cache or default_cache_dir()) / "compiled" / f"question-encoder-{key[:24]}.pt2"


def from_word_vectors(
    transformer: Any, after: Sequence[Any], precision: str, *, normalise: bool
) -> Any:
    """The module that is compiled: a question's word vectors (one question, unpadded) in,
    its sentence vector out, through ``transformer`` and the sentence-transformers modules
    ``after`` it (each called with the library's features, as the library calls them),
    normalised at the end when none of them does it."""
    import torch

    class FromWordVectors(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer
            self.after = torch.nn.ModuleList(after)

        def forward(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
            autocast = (
                torch.autocast("cpu", dtype=torch.bfloat16)
                if precision == "bfloat16"
                else contextlib.nullcontext()
            )
            with autocast:
                hidden = self.transformer(inputs_embeds=inputs_embeds).last_hidden_state
                # One question is never padded: every word piece is attended to.
                mask = torch.ones(hidden.shape[:2], dtype=torch.int64)
                features = {"token_embeddings": hidden.float(), "attention_mask": mask}
                for module in self.after:
                    features = module(features)
            vector = features["sentence_embedding"].float()
            if normalise:
                vector = torch.nn.functional.normalize(vector, dim=-1)
            return vector

    return FromWordVectors().eval()


def build_package(
    transformer: Any,
    after: Sequence[Any],
    precision: str,
    target: Path,
    sample_ids: Any,
    *,
    normalise: bool,
) -> Path:
    """Export and compile ``transformer`` and the modules ``after`` it into ``target``
    (written atomically)."""
    import torch
    import torch._inductor
    import torch._inductor.config as inductor_config

    target.parent.mkdir(parents=True, exist_ok=True)
    module = from_word_vectors(transformer, after, precision, normalise=normalise)
    words = transformer.get_input_embeddings()
    length = torch.export.Dim("tokens", min=2, max=MAX_TOKENS)
    # Freezing folds the weights into the graph as constants, so the matrix products can
    # use weights packed ahead for oneDNN (the larger part of the gain).
    inductor_config.freezing = True
    with torch.no_grad():
        sample = words(sample_ids)
        program = torch.export.export(
            module, (sample,), dynamic_shapes={"inputs_embeds": {1: length}}
        )
        handle, partial = tempfile.mkstemp(
            prefix=f".{target.stem}.", suffix=".partial.pt2", dir=target.parent
        )
        os.close(handle)
        try:
            torch._inductor.aoti_compile_and_package(program, package_path=partial)
            os.chmod(partial, 0o644)
            os.replace(partial, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
    return target


#: The call spec (torch's pytree, format 1) of a package called with one tensor as its
#: one argument and giving one tensor: ``((tensor,), {})`` in, ``tensor`` out.
_LEAF: dict[str, Any] = {"type": None, "context": None, "children_spec": []}
_ONE_TENSOR_IN = [
    1,
    {
        "type": "builtins.tuple",
        "context": "null",
        "children_spec": [
            {"type": "builtins.tuple", "context": "null", "children_spec": [_LEAF]},
            {"type": "builtins.dict", "context": "[]", "children_spec": []},
        ],
    },
]
_ONE_TENSOR_OUT = [1, _LEAF]


def load_package(path: Path) -> Runner:
    """The compiled question encoder in ``path``: word vectors in, sentence vector out.

    The package is opened by PyTorch's own C++ loader, which ``aoti_load_package`` wraps:
    the wrapper's imports (``torch._inductor``, 2.1 s) and its check of the package's CPU
    instruction set (which probes the machine's by compiling and loading a test program
    per instruction set in child processes) made 3 s of every worker's start, against
    0.07 s for the loader alone, with the same output (tests/test_compiled_query.py). The
    package's key already holds this CPU's flags (:func:`cpu_signature`), so a package
    built elsewhere is never found here. One tensor in and one out, as this module builds
    them; a package of any other shape, or a PyTorch without that loader, goes through
    the wrapper.
    """
    import torch

    loader_class = getattr(getattr(torch._C, "_aoti", None), "AOTIModelPackageLoader", None)
    if loader_class is not None:
        loader = loader_class(str(path), "model", False, 1, -1)
        inputs, outputs = loader.get_call_spec()
        if json.loads(inputs) == _ONE_TENSOR_IN and json.loads(outputs) == _ONE_TENSOR_OUT:
            return lambda vectors: loader.boxed_run([vectors])[0]
    return _load_with_the_wrapper(path)


def _load_with_the_wrapper(path: Path) -> Runner:
    import torch._inductor
    import torch._inductor.config

    # Loading compares the package's CPU instruction set with this machine's, for a
    # warning only, and finds this machine's by compiling a test program per instruction
    # set and loading each in a child Python. Told the instruction sets are usable, it
    # skips the probes that setting governs (measured on PyTorch 2.13: 2.5-3 s -> 0.88 s;
    # those of AVX-512's subsets still run).
    with torch._inductor.config.patch({"cpp.vec_isa_ok": True}):
        return torch._inductor.aoti_load_package(str(path))


@contextlib.contextmanager
def build_lock(target: Path, *, wait: bool = True) -> Iterator[bool]:
    """Whether this process may build ``target`` (one build per package at a time)."""
    import fcntl

    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_suffix(".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def start_background_build(model: str, device: str, precision: str) -> subprocess.Popen[bytes]:
    """Build the package for ``model`` in a child process at low priority."""
    command = [
        sys.executable,
        "-m",
        "qa_service.compiled_query",
        model,
        "--device",
        device,
        "--precision",
        precision,
    ]
    logger.info("compiling the question encoder in the background: %s", " ".join(command))
    child = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # Lowered from outside: a preexec_fn is unsafe in a process with threads (a worker).
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, child.pid, 10)
    return child


def main(argv: list[str] | None = None) -> int:
    """``python -m qa_service.compiled_query MODEL``: build that model's package."""
    import argparse

    from .embedding import SentenceTransformerEmbedder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    embedder = SentenceTransformerEmbedder(
        args.model, device=args.device, precision=args.precision, query_graph="compiled"
    )
    # In the background (auto): another process building it is as good as this one.
    path = embedder.compile_query_graph(wait=False)
    if path is None:
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
