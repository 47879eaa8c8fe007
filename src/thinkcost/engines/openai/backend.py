"""The `openai` backend: what the runner registers, `--model` and `served:NAME` variants of one
server, checked before a run starts, with token counts from the model's own tokenizer when
thinkcost can load it (the same counts as every in-process engine). Several URLs are a fleet:
each endpoint is asked for its models at start, endpoints that serve different models are
refused, and the per-endpoint counts land in the run note "endpoints"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from rich.markup import escape

from ...errors import UserError
from ...reasoning import NONE, detect_format
from .client import OpenAIEngine
from .stream import excerpt


def list_models(base_url: str, api_key: str | None = None, timeout_s: float = 10.0) -> list[str]:
    """Model ids the server offers: a cheap check, before a run starts, that the URL points
    at an OpenAI-compatible server, with one clear line when it does not."""
    url = f"{base_url.rstrip('/')}/models"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        resp = httpx.get(url, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as e:
        raise UserError(
            f"cannot reach an OpenAI-compatible server at {url}: {type(e).__name__}: {e}"
        ) from None
    if resp.status_code != 200:
        raise UserError(f"{url} answered HTTP {resp.status_code}: {excerpt(resp.text)}")
    try:
        data = resp.json()["data"]
        return [str(m["id"]) for m in data]
    except (ValueError, KeyError, TypeError):
        raise UserError(
            f"{url} did not answer like an OpenAI API (expected {{'data': [{{'id': ...}}]}}): "
            f"{excerpt(resp.text)}"
        ) from None


class OpenAIBackend:
    """A model served over HTTP: `base` is the served `--model`, `served:NAME` another model on
    the same server (e.g. a quantized copy), so CTIR compares them like local variants.

    Token counts come from the model's own tokenizer when thinkcost can load it (`--tokenizer`,
    or `--model` itself when it names a packaged model, a .gguf or a local dir); otherwise from
    the server's usage figures or, failing those, its streamed deltas (recorded per variant)."""

    variants_help = "base (the served --model) or served:NAME (another model on the same server)"

    @staticmethod
    def check_variant(name: str) -> None:
        if name != "base" and not (name.startswith("served:") and len(name) > len("served:")):
            raise UserError(
                f"variant {name!r} cannot run on the openai engine: expected {OpenAIBackend.variants_help}"
            )

    def __init__(self, spec, source, task, console) -> None:
        import os

        self.spec = spec
        self.console = console
        self.api_key = None
        if spec.api_key_env:
            self.api_key = os.environ.get(spec.api_key_env)
            if not self.api_key:
                raise UserError(f"--api-key-env {spec.api_key_env}: that environment variable is not set")
        self.urls = spec.endpoint_urls()
        self.fleet = spec.is_fleet()
        if self.fleet:
            self.served_by = _fleet_models(self.urls, self.api_key, console)
            self.served = sorted({m for ms in self.served_by.values() for m in ms})
        else:
            self.served = list_models(self.urls[0], self.api_key)
        self.count_tokens, self.tokenizer_source, tok = _token_counter(spec)
        # content without a server reasoning field splits by the model's own template, if known
        self.fmt = detect_format(tok, spec.thinking, label=spec.tokenizer or spec.model) if tok else NONE

    def prepare(self, variant: str, status: Callable[[str], None]) -> tuple[OpenAIEngine, dict]:
        model = self.spec.model if variant == "base" else variant[len("served:") :]
        if self.fleet:
            _check_fleet_model(self.served_by, model, variant)
        if self.served and model not in self.served:
            listed = escape(f"{variant}: the server lists {', '.join(self.served[:5])}, not {model!r}")
            self.console.print(f"[yellow]{listed}; trying anyway[/]")
        eng = OpenAIEngine(
            self.urls if self.fleet else self.urls[0],
            model,
            api_key=self.api_key,
            concurrency=self.spec.concurrency,
            idle_timeout_s=self.spec.request_timeout_s,
            attempt_timeout_s=max(600.0, self.spec.request_timeout_s * 5),
            max_retries=self.spec.max_retries,
            count_tokens=self.count_tokens,
            rng_seed=self.spec.seed,
            extra_body=self.spec.extra_body,
            fmt=self.fmt,
            thinking=self.spec.thinking,
        )
        info = {
            "engine": "openai",
            **({"endpoints": self.urls} if self.fleet else {"base_url": self.spec.base_url}),
            "served_model": model,
            "concurrency": self.spec.concurrency,
            "extra_body": self.spec.extra_body,
            "token_counts": self.tokenizer_source or "server usage or streamed deltas",
            "model": self.spec.model,
            # rows whose server sent a reasoning field are "server-field"; the rest split by this
            "reasoning_format": self.fmt.kind,
            "reasoning_format_why": self.fmt.why
            if self.tokenizer_source
            else "no local tokenizer (--tokenizer): content without a reasoning field is split heuristically",
        }
        return eng, info

    def close(self) -> None:
        return None


def _fleet_models(urls: list[str], api_key: str | None, console) -> dict[str, list[str]]:
    """Models listed by each reachable endpoint. An endpoint down at start is only a warning
    (the pool probes it and takes it in when it answers); all of them down is an error."""
    served: dict[str, list[str]] = {}
    down: list[str] = []
    for url in urls:
        try:
            served[url] = list_models(url, api_key)
        except UserError as e:
            down.append(str(e))
    if not served:
        raise UserError(f"no endpoint of the fleet answers; first: {down[0]}")
    for why in down:
        console.print(f"[yellow]{escape(why)}; it joins the fleet when it answers[/]")
    return served


def _check_fleet_model(served_by: dict[str, list[str]], model: str, variant: str) -> None:
    """A fleet's rows share one run id, so its endpoints must serve the same model: refuse an
    endpoint whose model list lacks it when another lists it. (When none lists it, the single
    server rule applies: a warning, then trying anyway, as servers may ignore the name.)"""
    have = [u for u, ms in served_by.items() if model in ms]
    lack = [u for u, ms in served_by.items() if ms and model not in ms]
    if have and lack:
        raise UserError(
            f"{variant}: the fleet's endpoints disagree: {', '.join(have)} serve {model!r}, but "
            f"{lack[0]} lists {', '.join(served_by[lack[0]][:5])}; give only endpoints of the same model"
        )


def _token_counter(spec) -> tuple[Callable[[str], int] | None, str | None, Any]:
    """The model's own tokenizer as a counter (and the tokenizer), when it can be loaded locally."""
    from pathlib import Path

    from ...models import PACKAGED, load_pretrained, resolve_model

    name = spec.tokenizer or spec.model
    local = name in PACKAGED or name.endswith(".gguf") or Path(name).expanduser().is_dir()
    if not (spec.tokenizer or local):
        return None, None, None
    from transformers import AutoTokenizer

    src = resolve_model(name)
    kw = {"gguf_file": src.gguf_file} if src.gguf_file else {}
    try:
        tok = load_pretrained(AutoTokenizer.from_pretrained, src.path, "--tokenizer", **kw)
    except OSError as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"--tokenizer {name!r}: cannot load it ({first})") from None
    return (lambda text: len(tok.encode(text, add_special_tokens=False))), f"tokenizer of {name}", tok
