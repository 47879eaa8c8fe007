"""The experiment spec: one pydantic model holding every knob of `thinkcost run`, validated
once, so a typo in a YAML file or a flag fails with one line naming the field."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import UserError
from .models import DEFAULT_MODEL
from .strategies.base import DEFAULT_WAIT_WORDS, strategy_help

# Sized so the default run (4 variants x 16 problems on Qwen2.5-Coder-0.5B) ends in < 10 min on 2 cores.
DEFAULT_LIMIT = 16
DEFAULT_MAX_NEW_TOKENS = 320
DEFAULT_BATCH_SIZE = 16
DEFAULT_STRATEGIES = ["greedy"]


def _engines_help() -> str:
    from .engines import ENGINES, engine_meta

    return "; ".join(f"{n} ({engine_meta(n).summary})" for n in ENGINES.names())


class RunSpec(BaseModel):
    """Everything that defines a run. Fields in `identity()` decide which stored rows a run
    may reuse; the rest (limit, variants, batch size, paths) can change between resumes."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # `panel` groups a field's option in `thinkcost run --help`; `cli` renames its flag.
    name: str | None = Field(None, description="run name; default derived from model and task")
    model: str = Field(DEFAULT_MODEL, description="packaged name, local .gguf, local dir, or hub id")
    variants: list[str] = Field(
        None,
        validate_default=True,
        description="comma list, e.g. base,rtn-w4g32,gptq-w3g128; default: the engine's default variants",
    )
    task: str = Field("arithmetic", description="task name (see `thinkcost tasks`)")
    task_options: dict[str, Any] = Field(
        default_factory=dict,
        description='the task\'s options as JSON, e.g. \'{"min_ops": 2, "max_ops": 4}\'',
        json_schema_extra={"panel": "task data"},
    )
    data: str | None = Field(
        None,
        description="local JSONL/JSON/CSV/Parquet file (or hub id) instead of the task's hub dataset",
        json_schema_extra={"panel": "task data"},
    )
    fields: dict[str, str] | None = Field(
        None,
        description="our field -> the file's column, e.g. question=problem,answer=solution",
        json_schema_extra={"panel": "task data"},
    )
    skip_bad_rows: bool = Field(
        False,
        description="record and skip malformed rows instead of stopping",
        json_schema_extra={"panel": "task data"},
    )
    prompt: str | None = Field(
        None,
        description="prompt template override ({question}, ... placeholders)",
        json_schema_extra={"panel": "task data"},
    )
    limit: int = Field(DEFAULT_LIMIT, ge=1, description="number of problems")
    strategy: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STRATEGIES),
        description="comma list of strategies: " + strategy_help(),
    )
    temperature: float = Field(
        0.7,
        gt=0,
        le=2,
        description="sampling temperature of sampling strategies",
        json_schema_extra={"panel": "strategies"},
    )
    top_p: float = Field(
        0.95,
        gt=0,
        le=1,
        description="nucleus mass of sampling strategies",
        json_schema_extra={"panel": "strategies"},
    )
    wait_words: list[str] = Field(
        default_factory=lambda: list(DEFAULT_WAIT_WORDS),
        description="comma list of the words wait-penalty discourages",
        json_schema_extra={"panel": "strategies"},
    )
    confidence: Literal["none", "verbal", "logprob"] = Field(
        "none",
        description="verbal: ask for a 0-100 confidence after the answer (same turn); logprob: "
        "exp(mean logprob) of the answer tokens; stored per generation, ECE/Brier/AUROC per row",
        json_schema_extra={"panel": "strategies"},
    )
    max_new_tokens: int = Field(
        DEFAULT_MAX_NEW_TOKENS, ge=1, le=131072, description="generation cap per sample"
    )
    max_steps: int | None = Field(
        None,
        ge=1,
        le=10000,
        description="step-level search (wbon/beam/dvts/pf): most steps per answer path (default 40)",
        json_schema_extra={"panel": "strategies"},
    )
    prm_format: Literal["qwen", "skywork", "math-shepherd", "rlhflow", "trl"] | None = Field(
        None,
        description="prm:MODEL scorers: the PRM's input/output format (default: detected from its config)",
        json_schema_extra={"panel": "strategies"},
    )
    batch_size: int = Field(DEFAULT_BATCH_SIZE, ge=1, le=4096, description="sequences decoded together")
    draft_tokens: int = Field(
        6,
        ge=0,
        le=64,
        description="hf engine: tokens looked up in a greedy row's own text and checked per step "
        "(speculative; a draft is kept only when it equals the model's pick; 0: one token per step)",
    )
    seed: int = Field(0, ge=0, description="problem and sampling seed")
    engine: str = Field("hf", description=_engines_help())
    base_url: str | None = Field(
        None,
        description="server URL, e.g. http://127.0.0.1:8000/v1; a comma list (YAML: a list) of servers "
        "of the same model is a fleet: requests go to the least busy one and survive a dying one",
        json_schema_extra={"panel": "openai engine"},
    )
    endpoints: Path | None = Field(
        None,
        description="file of server URLs of the same model, one per line (# comments): a fleet, "
        "with --base-url's URLs if both are given",
        json_schema_extra={"panel": "openai engine"},
    )
    api_key_env: str | None = Field(
        None,
        description="environment variable holding the API key",
        json_schema_extra={"panel": "openai engine"},
    )
    concurrency: int = Field(
        8,
        ge=1,
        le=1024,
        description="requests in flight at once",
        json_schema_extra={"panel": "openai engine"},
    )
    request_timeout_s: float = Field(
        120.0,
        gt=0,
        description="seconds without a byte before a request is retried",
        json_schema_extra={"panel": "openai engine", "cli": "--request-timeout"},
    )
    max_retries: int = Field(
        5, ge=0, le=50, description="retries per request", json_schema_extra={"panel": "openai engine"}
    )
    tokenizer: str | None = Field(
        None,
        description="model whose tokenizer counts tokens (default: --model if local)",
        json_schema_extra={"panel": "openai engine"},
    )
    extra_body: dict[str, Any] | None = Field(
        None,
        description="server-specific JSON fields sent with every request, e.g. "
        "'{\"repeat_penalty\": 1.0}' for llama-cpp-python (which otherwise penalises repeats)",
        json_schema_extra={"panel": "openai engine"},
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads (default: all cores)",
        json_schema_extra={"panel": "llamacpp engine"},
    )
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="float32, bfloat16 or float16"
    )
    device: str = Field("auto", description="cpu, cuda, cuda:N, mps or auto")
    store: Path | None = Field(None, description="SQLite store (default runs/<name>.sqlite)")
    out: Path | None = Field(None, description="output dir for JSON/Parquet/HTML (default runs/<name>/)")
    n_boot: int = Field(2000, ge=100, description="bootstrap resamples for the CTIR intervals")
    calib_samples: int = Field(
        32, ge=1, description="calibration windows", json_schema_extra={"panel": "GPTQ/Babai calibration"}
    )
    calib_seq_len: int = Field(
        256,
        ge=8,
        description="tokens per calibration window",
        json_schema_extra={"panel": "GPTQ/Babai calibration"},
    )
    calib_file: Path | None = Field(
        None,
        description="text/JSONL calibration data (default: task prompts)",
        json_schema_extra={"panel": "GPTQ/Babai calibration"},
    )
    tag: str | None = Field(
        None,
        description="extra identity label (e.g. repro:bs=4) so otherwise-equal runs keep their own rows; "
        "unset leaves the run id unchanged",
    )
    shard: str | None = Field(
        None,
        description="draw only shard I of N (e.g. 1/4): problems split by a stable hash of their id; "
        "run one worker per shard, each with its own --store, then `thinkcost merge` the stores",
    )
    thinking: Literal["auto", "on", "off"] = Field(
        "auto",
        description="the chat template's thinking switch (Qwen3 enable_thinking): on or off; auto = the "
        "template's default. on/off on a template without a switch is an error",
    )
    executor: Literal["local", "ray"] = Field(
        "local",
        description="local: the engine runs in this process; ray: Ray actors each hold one engine replica "
        "(hf, llamacpp or vllm) and stream completions back, this process alone writes the store "
        '(pip install "thinkcost[ray]")',
        json_schema_extra={"panel": "ray executor"},
    )
    ray_address: str | None = Field(
        None,
        description="Ray cluster to join, e.g. auto or ray://HOST:10001 (default: start a local one); "
        "only with --executor ray",
        json_schema_extra={"panel": "ray executor"},
    )
    ray_workers: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="engine replicas (Ray actors); default: one per GPU of the cluster with a cuda device, "
        "else one per --threads CPUs (threads default 1 per replica)",
        json_schema_extra={"panel": "ray executor"},
    )

    @model_validator(mode="before")
    @classmethod
    def _engine_default_variants(cls, data: Any) -> Any:
        """Without --variants, each engine compares what it can run (its registration's
        `default_variants`: hf RTN bit widths, llamacpp F32 vs Q8_0/Q4_K_M, servers the model)."""
        if isinstance(data, dict) and data.get("variants") is None:
            from .engines import ENGINES, engine_meta

            engine = data.get("engine", "hf")
            if engine not in ENGINES:  # said here, before a missing variants list is
                raise ValueError(
                    f"field 'engine': unknown engine {engine!r}; known: {', '.join(ENGINES.names())}"
                )
            data = {**data, "variants": list(engine_meta(engine).default_variants)}
        return data

    @field_validator("variants", mode="before")
    @classmethod
    def _split_variants(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [x.strip() for x in v.split(",") if x.strip()]
        return v

    @field_validator("variants")
    @classmethod
    def _check_variants(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("expected at least one variant")
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate variant names in {v}")
        return v

    @field_validator("engine")
    @classmethod
    def _check_engine(cls, v: str) -> str:
        from .engines import ENGINES

        if v not in ENGINES:
            raise ValueError(f"unknown engine {v!r}; known: {', '.join(ENGINES.names())}")
        return v

    @field_validator("strategy", mode="before")
    @classmethod
    def _split_strategies(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [x.strip() for x in v.split(",") if x.strip()]
        return v

    @field_validator("fields", mode="before")
    @classmethod
    def _parse_fields(cls, v: Any) -> Any:
        from .tasks.templating import parse_fields  # the tasks' own parser, so both refuse the same specs

        if v is None:
            return v
        try:
            return parse_fields(v)
        except UserError as e:
            raise ValueError(str(e).removeprefix("fields: ")) from None

    @field_validator("wait_words", mode="before")
    @classmethod
    def _split_words(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [x.strip() for x in v.split(",")]
        return v

    @field_validator("task_options", mode="before")
    @classmethod
    def _parse_task_options(cls, v: Any) -> Any:
        if isinstance(v, str):  # from the command line
            try:
                v = json.loads(v)
            except ValueError as e:
                raise ValueError(f"expected a JSON object, e.g. '{{\"min_ops\": 2}}': {e}") from None
            if not isinstance(v, dict):
                raise ValueError("expected a JSON object")
        return v

    @field_validator("extra_body", mode="before")
    @classmethod
    def _parse_extra_body(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                v = json.loads(v)
            except ValueError as e:
                raise ValueError(f"expected a JSON object, e.g. '{{\"repeat_penalty\": 1.0}}': {e}") from None
            if not isinstance(v, dict):
                raise ValueError("expected a JSON object")
        return v

    @field_validator("base_url", mode="before")
    @classmethod
    def _join_base_urls(cls, v: Any) -> Any:
        """A YAML list of URLs is the same fleet as the comma list on the command line."""
        if isinstance(v, (list, tuple)):
            v = ",".join(str(x).strip() for x in v)
        if isinstance(v, str) and "," in v:
            urls = [u.strip() for u in v.split(",") if u.strip()]
            for u in urls:
                if not _is_http_url(u):
                    raise ValueError(f"expected http(s) URLs, got {u!r}")
            v = ",".join(urls)
        return v

    @field_validator("endpoints")
    @classmethod
    def _check_endpoints(cls, v: Path | None) -> Path | None:
        if v is not None:
            read_endpoints(v)  # refuse a bad file now, with its name and line
        return v

    @field_validator("wait_words")
    @classmethod
    def _check_words(cls, v: list[str]) -> list[str]:
        if not v or any(not w.strip() for w in v):
            raise ValueError("expected a non-empty list of non-empty words")
        return v

    @field_validator("shard")
    @classmethod
    def _check_shard(cls, v: str | None) -> str | None:
        from .tasks.shard import parse_shard

        return None if v is None else str(parse_shard(v))

    @field_validator("ray_address")
    @classmethod
    def _check_ray_address(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or any(c.isspace() for c in v)):
            raise ValueError(f"expected auto, local, HOST:PORT or ray://HOST:PORT, got {v!r}")
        return v

    @model_validator(mode="after")
    def _check_executor(self) -> RunSpec:
        from .engines import engine_meta

        if self.executor == "local":
            for f in ("ray_address", "ray_workers"):
                if getattr(self, f) is not None:
                    raise ValueError(f"field '{f}': only used with --executor ray")
        elif not engine_meta(self.engine).needs_local_model:
            raise ValueError(
                f"field 'executor': --executor ray runs engine replicas (hf, llamacpp, vllm); the "
                f"{self.engine} engine is a client of servers that already share the load"
            )
        return self

    @field_validator("device")
    @classmethod
    def _check_device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", v):
            raise ValueError(f"expected cpu, cuda, cuda:N, mps or auto, got {v!r}")
        return v

    @model_validator(mode="after")
    def _check_task(self) -> RunSpec:
        from .engines import ENGINES, engine_meta, steering_engines
        from .tasks import get_task

        meta = engine_meta(self.engine)
        backend = ENGINES.get(self.engine)
        for name in self.variants:
            try:
                backend.check_variant(name)
            except UserError as e:
                raise ValueError(f"field 'variants': {e}") from None
        for f in meta.requires_fields:
            if getattr(self, f) is None and not (f == "base_url" and self.endpoints is not None):
                flag = "--" + f.replace("_", "-")
                raise ValueError(f"field '{f}': the {self.engine} engine needs {flag}")
        try:
            get_task(self.task, **self.task_kwargs())
            strategies = self.strategies()
        except UserError as e:
            raise ValueError(str(e)) from None
        if not strategies:
            raise ValueError("strategy: expected at least one strategy")
        names = [s.name for s in strategies]
        if len(set(names)) != len(names):
            raise ValueError(f"strategy: duplicate strategies in {names}")
        room = getattr(self, meta.races_in)
        for s in strategies:
            r = s.recipe
            if not meta.steers_decoding and (r.think_budget is not None or r.max_waits or r.penalty):
                raise ValueError(
                    f"strategy {s.name!r} steers decoding token by token (bf-cap, bf-wait, wait-penalty): "
                    f"run it with --engine {' or '.join(steering_engines())}, not {self.engine}"
                )
            if r.stop_after is not None and r.n > room:
                raise ValueError(
                    f"strategy {s.name!r} races its {r.n} samples against each other, all at once: "
                    f"{meta.races_in} must be >= {r.n}, got {room}"
                )
        return self

    # --- derived ---------------------------------------------------------------------------
    def task_kwargs(self) -> dict[str, Any]:
        """task_options plus the data flags that are set (a task that takes no data refuses them)."""
        extra = {
            k: v
            for k, v in (("data", self.data), ("fields", self.fields), ("prompt", self.prompt))
            if v is not None
        }
        if self.skip_bad_rows:
            extra["skip_bad_rows"] = True
        return {**self.task_options, **extra}

    def sampling_options(self):
        from .strategies import SamplingOptions

        return SamplingOptions(self.temperature, self.top_p, tuple(self.wait_words))

    def strategies(self) -> list:
        """The parsed strategies (recipe + decision rule), in the order given."""
        import dataclasses

        from .strategies import parse_strategy

        out = [parse_strategy(x, self.sampling_options()) for x in self.strategy]
        if self.confidence == "verbal":  # the prompt asks for it: a different recipe (and samples)
            out = [dataclasses.replace(s, recipe=dataclasses.replace(s.recipe, verbal=True)) for s in out]
        return out

    @property
    def reference(self) -> str:
        """The variant CTIR and speed-ups are measured against: `base` if present, else the first."""
        from .metrics.summary import reference_variant

        return reference_variant(self.variants)

    def run_name(self) -> str:
        if self.name:
            return self.name
        model = Path(self.model).stem if self.model.endswith(".gguf") else self.model.split("/")[-1]
        return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{model}-{self.task}")

    def store_path(self) -> Path:
        return self.store or Path("runs") / f"{self.run_name()}.sqlite"

    def out_dir(self) -> Path:
        return self.out or Path("runs") / self.run_name()

    def endpoint_urls(self) -> list[str]:
        """The servers of the openai engine: --base-url's URLs, then --endpoints' (duplicates once)."""
        urls = [u.strip().rstrip("/") for u in (self.base_url or "").split(",") if u.strip()]
        if self.endpoints is not None:
            urls += [u.rstrip("/") for u in read_endpoints(self.endpoints)]
        return list(dict.fromkeys(urls))

    def is_fleet(self) -> bool:
        """Several servers, or an endpoints file (a fleet of one keeps the fleet's run id)."""
        return self.endpoints is not None or len(self.endpoint_urls()) > 1

    def identity(self) -> dict[str, Any]:
        """The fields that change what a generation is (`IDENTITY`); rows are shared only when
        all match. Fields added after stores existed enter only when set away from their old
        behaviour, so earlier runs keep their ids. Strategies are not among them: every row
        carries its recipe key (temperature, top-p, budget, ...) and strategies with the same
        recipe share samples, so adding a strategy to a run resumes it."""
        ident: dict[str, Any] = {
            "model": self.model,
            "task": self.task,
            "task_options": self.task_kwargs(),
            "max_new_tokens": self.max_new_tokens,
            "seed": self.seed,
            "engine": self.engine,
            "dtype": self.dtype,
        }
        optional = {
            "extra_body": self.extra_body or None,
            "tag": self.tag,
            # one server names the run, as it always did; a fleet's endpoints serve one model,
            # so they may change between resumes (IDENTITY["endpoints"])
            "base_url": self.base_url.rstrip("/") if self.base_url and not self.is_fleet() else None,
            "tokenizer": self.tokenizer,
            "thinking": None if self.thinking == "auto" else self.thinking,
            "data_sha256": _file_sha256(self.data),
            "max_steps": self.max_steps,
            "prm_format": self.prm_format,
        }
        return ident | {k: v for k, v in optional.items() if v is not None}

    def run_id(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# Every RunSpec field, declared. "run": part of the run id (rows are shared only when all match).
# "variant": part of the fingerprint of the variants it affects, checked against the stored
# rows on every rerun (runner.variant_fingerprint). Anything else is the reason the field never
# changes a stored generation. tests/test_spec_identity.py fails when a field is not declared
# here, and checks each declaration by changing the field.
IDENTITY: dict[str, str] = {
    "model": "run",
    "task": "run",
    "task_options": "run",
    "data": "run",  # its path in task_options, and a local file's sha256
    "fields": "run",  # in task_options: which columns become the question and the answer
    "skip_bad_rows": "run",  # in task_options: which rows become problems
    "prompt": "run",  # in task_options: the prompt the model sees
    "max_new_tokens": "run",
    "max_steps": "run",  # only when set: the default (40) leaves older run ids as they were
    "prm_format": "run",  # only when set; a detected format follows from the PRM itself
    "seed": "run",
    "engine": "run",
    "dtype": "run",
    "extra_body": "run",
    "tag": "run",
    "base_url": "run",  # one URL; several are a fleet, identified like `endpoints`
    "endpoints": "a fleet serves one --model (checked at start), so its URLs are left out of the run id: "
    "endpoints can join or leave between resumes; a single --base-url stays in the id as before, so a "
    "fleet does not resume a single-server run (that server may serve a differently built model)",
    "tokenizer": "run",  # token counts of the openai engine come from it
    "thinking": "run",
    "calib_samples": "variant",
    "calib_seq_len": "variant",
    "calib_file": "variant",
    "name": "a label: only the default store and output paths derive from it",
    "variants": "each row carries its variant; variants can be added or dropped between resumes",
    "limit": "problems are drawn in a seeded order, so a larger limit extends the same list",
    "strategy": "each row carries its recipe key; strategies that share a recipe share samples",
    "temperature": "part of each sampled row's recipe key",
    "top_p": "part of each sampled row's recipe key",
    "wait_words": "part of each wait-penalty row's recipe key (hashed)",
    "confidence": "verbal is part of the recipe key (the prompt changes); logprob only reads logprobs",
    "batch_size": "stored per row; it changes float rounding only (thinkcost repro measures that)",
    "draft_tokens": "hf decode speed: a drafted token is kept only when it equals the model's own pick, "
    "so greedy texts are the same with or without drafts (tests compare token ids)",
    "device": "recorded in the variant facts; it changes float rounding only, like batch_size",
    "threads": "llamacpp speed only; recorded in the variant facts",
    "concurrency": "openai scheduling: requests in flight change timings, not texts",
    "request_timeout_s": "openai retry policy: a retried sample is drawn again whole",
    "max_retries": "openai retry policy: a failed sample is stored as failed and redrawn on rerun",
    "api_key_env": "credentials",
    "shard": "which problems a worker draws: shards of one run share its run id and merge into one store",
    "store": "where rows are kept",
    "out": "where reports are written",
    "n_boot": "report bootstrap resamples",
    "executor": "where the engine runs (this process or Ray actors): each sample is seeded by its own id, "
    "so the same engine and batch size make the same rows either way",
    "ray_address": "which Ray cluster runs the replicas: scheduling, not what a generation is",
    "ray_workers": "how many replicas share the work: scheduling, not what a generation is",
}


def _is_http_url(u: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(u)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not any(c.isspace() for c in u)


def read_endpoints(path: Path) -> list[str]:
    """The URLs of an endpoints file: one per line, blank lines and `#` comments skipped; a
    missing or empty file, or a line that is not an http(s) URL, is a ValueError naming the
    file (and line), which the spec reports as one line."""
    path = Path(path).expanduser()
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read endpoints file {str(path)!r}: {type(e).__name__}") from None
    urls = []
    for n, line in enumerate(text.splitlines(), 1):
        u = line.split("#", 1)[0].strip()
        if not u:
            continue
        if not _is_http_url(u):
            raise ValueError(f"{path}:{n}: expected an http(s) URL, e.g. http://127.0.0.1:8000/v1, got {u!r}")
        urls.append(u)
    if not urls:
        raise ValueError(f"{path}: no endpoint URLs (one per line, # comments)")
    return urls


def _file_sha256(path: str | None) -> str | None:
    """Content hash of a local data file (a changed file is a different run); None for hub ids."""
    if path is None or not Path(path).expanduser().is_file():
        return None
    from .hashing import content_hash

    return content_hash(Path(path).expanduser())


def _format_error(e: ValidationError, origin: str) -> str:
    err = e.errors()[0]
    field = ".".join(str(x) for x in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        known = ", ".join(RunSpec.model_fields)
        msg = f"unknown field; known fields: {known}"
    more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    where = f"field '{field}': " if field else ""
    return f"{origin}: {where}{msg}{more}"


def load_spec_file(path: Path) -> dict[str, Any]:
    """Read a YAML/JSON spec into a dict; parse errors name the file and line."""
    if not path.is_file():
        raise UserError(f"spec file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{path}:{where}: invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(
            f"{path}: expected a mapping of spec fields at the top level, got {type(data).__name__}"
        )
    return data


def build_spec(file_values: dict[str, Any], overrides: dict[str, Any], origin: str = "spec") -> RunSpec:
    """File values first, CLI flags (non-None) on top; all errors become one UserError line."""
    values = {**file_values, **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return RunSpec(**values)
    except ValidationError as e:
        raise UserError(_format_error(e, origin)) from None
