"""A hub id that cannot be loaded ends in one line naming the id and the fix, exit code 2, at once.

The hub is made unreachable for real: HF_ENDPOINT points at a port with a bound socket that does
not listen (connection refused), or HF_HUB_OFFLINE=1; HF_HOME is a fresh directory, so nothing is
cached unless a test puts it there. Every case runs in a subprocess, because huggingface_hub
reads its environment once, at import.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cli_run import cli, one_line_error
from thinkcost import models
from thinkcost.errors import UserError

HUB_ID = "Qwen/Qwen3-0.6B"  # the README's own example


@pytest.fixture
def refused_url() -> Iterator[str]:
    """An http URL on 127.0.0.1 where a connection is refused: the port is bound, never listened on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def hub_env(tmp_path: Path, endpoint: str | None, offline: bool = False) -> dict[str, str]:
    """This environment with the hub unreachable (endpoint refused, or offline) and an empty HF_HOME."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HF_TOKEN"}
        and not k.upper().endswith("_PROXY")
    }
    env["HF_HOME"] = str(tmp_path / "hf-home")
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def python(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


# ------------------------------------------------------------------------------ the real CLI


def test_run_hub_model_with_the_hub_unreachable(tmp_path, refused_url):
    p = cli("run", "--model", HUB_ID, "--limit", "1", cwd=tmp_path, env=hub_env(tmp_path, refused_url))
    one_line_error(
        p, f"model {HUB_ID!r}", "unreachable", refused_url, "HF_HUB_OFFLINE=1", "local model dir", ".gguf"
    )


def test_run_hub_model_offline_and_not_cached(tmp_path):
    p = cli("run", "--model", HUB_ID, "--limit", "1", cwd=tmp_path, env=hub_env(tmp_path, None, offline=True))
    one_line_error(
        p, f"model {HUB_ID!r}", "HF_HUB_OFFLINE is set", "not in the local", "local model dir", ".gguf"
    )


class _ModelsOnly(BaseHTTPRequestHandler):
    """An OpenAI-compatible server as far as the start of a run goes: it lists one model."""

    def do_GET(self) -> None:
        body = json.dumps({"object": "list", "data": [{"id": "served"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def models_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ModelsOnly)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_openai_tokenizer_with_the_hub_unreachable(tmp_path, refused_url, models_server):
    args = ["run", "--engine", "openai", "--base-url", models_server, "--model", "served"]
    p = cli(*args, "--tokenizer", HUB_ID, "--limit", "1", cwd=tmp_path, env=hub_env(tmp_path, refused_url))
    one_line_error(p, f"--tokenizer {HUB_ID!r}", "unreachable", "HF_HUB_OFFLINE=1", ".gguf")


# ------------------------------------------------------------------------ the other loaders


def test_reward_model_with_the_hub_unreachable(tmp_path, refused_url):
    code = (
        "from thinkcost.errors import UserError\n"
        "from thinkcost.strategies.reward_model import RewardModel\n"
        "try:\n"
        "    RewardModel('org/tiny-rm')\n"
        "except UserError as e:\n"
        "    print(e)\n"
    )
    p = python(code, hub_env(tmp_path, refused_url), tmp_path)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr and "Retrying" not in p.stderr
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1, p.stdout
    for needle in ("reward model 'org/tiny-rm'", "unreachable", "HF_HUB_OFFLINE=1", ".gguf"):
        assert needle in lines[0]


def _cache_tiny_tokenizer(hf_home: Path, repo: str) -> None:
    """A word-level tokenizer (and the config AutoTokenizer reads first) laid out as huggingface_hub
    caches a download of `repo` at main."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import LlamaConfig, PreTrainedTokenizerFast

    raw = Tokenizer(WordLevel({"[UNK]": 0, "hello": 1, "world": 2}, unk_token="[UNK]"))
    raw.pre_tokenizer = Whitespace()
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / commit
    PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]").save_pretrained(snapshot)
    LlamaConfig(
        vocab_size=3, hidden_size=8, intermediate_size=8, num_hidden_layers=1, num_attention_heads=1
    ).save_pretrained(snapshot)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)


def test_a_cached_copy_loads_without_retries_when_the_hub_is_unreachable(tmp_path, refused_url):
    env = hub_env(tmp_path, refused_url)
    _cache_tiny_tokenizer(Path(env["HF_HOME"]), "org/tiny")
    code = (
        "from transformers import AutoTokenizer\n"
        "from thinkcost.models import load_pretrained\n"
        "tok = load_pretrained(AutoTokenizer.from_pretrained, 'org/tiny', 'model')\n"
        "print(tok.encode('hello world', add_special_tokens=False))\n"
    )
    p = python(code, env, tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[1, 2]"
    assert "Retrying" not in p.stderr


# ------------------------------------------------------------- the translation, in process


def _hub_http_error(kind: str) -> Exception:
    import httpx2  # what huggingface_hub's errors carry here
    from huggingface_hub import errors

    response = httpx2.Response(401, request=httpx2.Request("HEAD", "https://huggingface.co/org/x"))
    return getattr(errors, kind)("401 Client Error", response=response)


@pytest.mark.parametrize(
    ("kind", "needles"),
    [
        ("GatedRepoError", ["gated", "hf auth login", ".gguf"]),
        ("RepositoryNotFoundError", ["no such repo", "check the id", ".gguf"]),
    ],
)
def test_missing_and_gated_repos_are_named(monkeypatch, kind, needles):
    pytest.importorskip("httpx2")
    monkeypatch.setattr(models, "_hub_answers", lambda endpoint: True)

    def load(path, **kw):
        # transformers wraps the hub's error in an OSError of its own
        raise OSError(
            f"{path} is not a local folder and is not a valid model identifier"
        ) from _hub_http_error(kind)

    with pytest.raises(UserError) as info:
        models.load_pretrained(load, "org/x", "model")
    msg = str(info.value)
    assert msg.startswith("model 'org/x': ") and "\n" not in msg
    for n in needles:
        assert n in msg


def test_no_hub_answer_means_local_files_only(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(models, "_hub_offline", lambda: False)
    monkeypatch.setattr(models, "_hub_answers", lambda endpoint: False)
    assert (
        models.load_pretrained(lambda path, **kw: seen.append(kw) or "ok", "org/x", "model", dtype="f")
        == "ok"
    )
    assert seen == [{"dtype": "f", "local_files_only": True}]
    # a local directory is never looked up on the hub, and its errors are its own
    monkeypatch.setattr(models, "_hub_answers", lambda endpoint: pytest.fail("asked the hub for a local dir"))

    def broken(path, **kw):
        raise OSError("couldn't connect (but this is a local dir)")

    with pytest.raises(OSError, match="local dir"):
        models.load_pretrained(broken, str(tmp_path), "model")


def test_other_errors_pass_through(monkeypatch):
    monkeypatch.setattr(models, "_hub_answers", lambda endpoint: True)

    def bad(path, **kw):
        raise ValueError("unrecognized configuration class")

    with pytest.raises(ValueError, match="unrecognized"):
        models.load_pretrained(bad, "org/x", "model")
