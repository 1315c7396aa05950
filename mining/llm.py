"""LLM extraction through the official ``openai`` client and any OpenAI-compatible endpoint.

Every request carries the reply's JSON schema (structured outputs: the client's
``chat.completions.parse`` with the pydantic model ``ExtractionResponse``, which it turns into
a strict ``json_schema`` response format: every field required, nullable where it may be
missing, no other keys). The reply is validated against the same model, with
``extra="forbid"``: a reply with keys the schema does not declare, or missing ones, is invalid
(never an empty record). An invalid reply gets one repair request; if that fails too the
source's extraction fails with the reason.

Temperatures come back as written, each with its unit ("K" or "C"); code converts them
(``RawRecord.kelvin``). Dmax, the GFA class and the heating rate come back too. The records of
a source's chunks are merged once (``mining.merging``).

The client's own retries are off (``max_retries=0``): we retry here, with exponential
backoff, on 429, 5xx, timeouts and connection errors, so the policy is ours and testable.
A ``RequestBudget`` shared by the sources of a batch caps the requests a batch may send
(``GLASSLOOP_LLM_MAX_REQUESTS_PER_BATCH``); ``estimate`` says before a run how many it needs.
The configuration comes from Django settings (config/settings.py reads it from the
environment, strictly); the API key is passed to the client and never logged, stored or put
in an error message.
"""

import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from typing import Literal

import openai
import pydantic
from django.conf import settings as django_settings
from openai.lib._pydantic import to_strict_json_schema  # what ``parse`` sends for the model
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ml.rules import GFA_CLASSES, temperature_unit

from .extractors import RawRecord, chunk_text
from .merging import merge_records
from .prompts import PROMPT_VERSION, build_messages, build_repair_messages

logger = logging.getLogger(__name__)


class ExtractionError(Exception):
    """Extraction of one source failed; the message says why (and is shown to reviewers)."""


class BudgetExceeded(ExtractionError):
    """The batch reached its cap of LLM requests; the run stops."""


# ---------------------------------------------------------------- response schema
# No string-length keywords in the schema (strict structured outputs do not take them
# everywhere): lengths are checked by the validators instead.

GfaClass = Literal[GFA_CLASSES]  # ("bmg", "ribbon", "crystal")


class Temperature(BaseModel):
    """A temperature exactly as the text wrote it: the number and its unit."""

    model_config = ConfigDict(extra="forbid")

    value: float = Field(description="The number as written in the text; not converted.")
    unit: Literal["K", "C"] = Field(description='"K" for kelvin, "C" for degrees Celsius, as written.')

    @field_validator("unit", mode="before")
    @classmethod
    def _unit(cls, value):
        # "K" or "C" however it was written (ml.rules); anything else fails the Literal.
        return temperature_unit(value) or value if isinstance(value, str) else value


class LLMRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    composition: str = Field(description="The alloy's composition exactly as written.")
    tg: Temperature | None = Field(description="Glass transition temperature Tg, or null.")
    tx: Temperature | None = Field(description="Onset of crystallisation Tx, or null.")
    tl: Temperature | None = Field(description="Liquidus temperature Tl, or null.")
    dmax_mm: float | None = Field(ge=0, le=1000, description="Critical/maximum casting diameter in mm, or null.")
    gfa_class: GfaClass | None = Field(
        description='"bmg" (bulk glass, cast >= 1 mm), "ribbon" (glass only as melt-spun ribbon), '
                    '"crystal" (no glass), or null when the text does not say.')
    heating_rate_k_min: float | None = Field(gt=0, le=100000, description="DSC heating rate in K/min, or null.")
    snippet: str = Field(description="Exact quotation from the text supporting the record.")

    @model_validator(mode="before")
    @classmethod
    def _keywords(cls, data, info):
        """In code only (never for a reply, which is JSON): LLMRecord(composition=..., tg=400,
        unit="°C") with one unit for bare numbers and the rest null."""
        if info.mode != "python" or not isinstance(data, dict) or "unit" not in data:
            return data
        data = dict(data)
        written = data.pop("unit")
        unit = temperature_unit(written) if isinstance(written, str) else None
        if unit is None:
            raise ValueError(f"Unknown temperature unit {written!r}.")
        for prop in ("tg", "tx", "tl"):
            if isinstance(data.get(prop), (int, float)):
                data[prop] = {"value": data[prop], "unit": unit}
        for name in ("tg", "tx", "tl", "dmax_mm", "gfa_class", "heating_rate_k_min"):
            data.setdefault(name, None)
        data.setdefault("snippet", "")
        return data

    @property
    def unit(self):
        """The unit of its first temperature ("K" when it has none)."""
        return next((t.unit for t in (self.tg, self.tx, self.tl) if t is not None), "K")

    @field_validator("composition", "snippet", mode="before")
    @classmethod
    def _strip(cls, value):
        return value.strip() if isinstance(value, str) else value

    @field_validator("composition")
    @classmethod
    def _composition(cls, value):
        if not value:
            raise ValueError("the composition is empty")
        if len(value) > 255:
            raise ValueError("the composition is longer than 255 characters")
        return value

    @field_validator("snippet")
    @classmethod
    def _snippet(cls, value):
        if len(value) > 4000:
            raise ValueError("the snippet is longer than 4000 characters")
        return value

    def to_raw(self):
        values = {p: (t.value, t.unit) for p in ("tg", "tx", "tl") if (t := getattr(self, p)) is not None}
        return RawRecord(
            composition=self.composition, values=values, dmax_mm=self.dmax_mm, gfa_class=self.gfa_class or "",
            heating_rate_k_min=self.heating_rate_k_min, snippet=self.snippet,
        )


class ExtractionResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[LLMRecord]


FENCE_RE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def _problems(exc):
    def one(e):
        where = ".".join(map(str, e["loc"])) or "reply"
        return f"{where}: {e['msg']}"
    return "; ".join(one(e) for e in exc.errors()[:5])


def parse_reply(content):
    """ExtractionResponse from the model's reply; raises ValueError with a short reason."""
    if not content or not content.strip():
        raise ValueError("the reply was empty")
    text = content.strip()
    fenced = FENCE_RE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    try:
        return ExtractionResponse.model_validate_json(text)  # JSON mode: the reply's own shape only
    except ValidationError as exc:
        raise ValueError(f"JSON does not follow the schema ({_problems(exc)})") from None


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class LLMConfig:
    model: str
    base_url: str | None = None
    api_key: str = field(default="", repr=False)  # never shown
    timeout_s: float = 120.0
    max_attempts: int = 4
    backoff_base_s: float = 2.0
    backoff_max_s: float = 60.0
    chunk_chars: int = 12000
    overlap_chars: int = 800
    max_requests_per_batch: int = 500

    @classmethod
    def from_settings(cls, model=None, *, settings=None):
        """The configuration from Django settings (``settings``: any object with the same
        attributes), or None when no model is given or configured."""
        settings = django_settings if settings is None else settings
        model = (model or settings.GLASSLOOP_LLM_MODEL or "").strip()
        if not model:
            return None
        return cls(
            model=model,
            base_url=settings.OPENAI_BASE_URL or None,
            # A local OpenAI-compatible server may need no key; the client insists on one.
            api_key=settings.OPENAI_API_KEY or "no-key",
            timeout_s=float(settings.GLASSLOOP_LLM_TIMEOUT_S),
            max_attempts=int(settings.GLASSLOOP_LLM_MAX_ATTEMPTS),
            backoff_base_s=float(settings.GLASSLOOP_LLM_BACKOFF_S),
            chunk_chars=int(settings.GLASSLOOP_LLM_CHUNK_CHARS),
            overlap_chars=int(settings.GLASSLOOP_LLM_OVERLAP_CHARS),
            max_requests_per_batch=int(settings.GLASSLOOP_LLM_MAX_REQUESTS_PER_BATCH),
        )


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0

    def add(self, usage):
        self.requests += 1
        if usage is not None:
            get = usage.get if isinstance(usage, dict) else lambda k, d=None: getattr(usage, k, d)
            self.prompt_tokens += int(get("prompt_tokens", 0) or 0)
            self.completion_tokens += int(get("completion_tokens", 0) or 0)


class RequestBudget:
    """The LLM requests a batch run may still send (shared by its sources, retries and
    repairs included). ``take`` raises BudgetExceeded once the cap is reached."""

    def __init__(self, max_requests):
        self.max_requests = int(max_requests)
        self.used = 0

    def take(self):
        if self.used >= self.max_requests:
            raise BudgetExceeded(
                f"Stopped: the batch reached its cap of {self.max_requests} LLM requests "
                "(GLASSLOOP_LLM_MAX_REQUESTS_PER_BATCH)."
            )
        self.used += 1


# ---------------------------------------------------------------- estimate (before a run)

CHARS_PER_TOKEN = 4  # a rough, conservative rule for English text
COMPLETION_TOKENS_PER_REQUEST = 400  # a reply listing a few records


def prompt_overhead_chars():
    """Characters every request sends besides the chunk: rules, worked examples, schema."""
    schema = json.dumps(to_strict_json_schema(ExtractionResponse))
    return sum(len(m["content"]) for m in build_messages("")) + len(schema)


def estimated_chunks(text_chars, chunk_chars, overlap_chars):
    """About how many chunks ``chunk_text`` makes of a text this long (it cuts at a paragraph,
    line or sentence end, so real chunks can be somewhat shorter)."""
    if text_chars <= 0:
        return 0
    if text_chars <= chunk_chars:
        return 1
    step = max(1, chunk_chars - min(overlap_chars, chunk_chars // 2))
    return 1 + math.ceil((text_chars - chunk_chars) / step)


@dataclass(frozen=True)
class Estimate:
    requests: int
    prompt_tokens: int
    completion_tokens: int
    max_requests: int

    @property
    def tokens(self):
        return self.prompt_tokens + self.completion_tokens

    @property
    def over_cap(self):
        return self.requests > self.max_requests

    def describe(self):
        return (f"Estimate before the run: {self.requests} LLM requests, ~{self.tokens:,} tokens "
                f"(~{self.prompt_tokens:,} prompt + ~{self.completion_tokens:,} completion; "
                f"retries and repairs not counted); cap {self.max_requests} requests per batch.")


def estimate(texts, config, *, exact=True):
    """The requests and tokens a run over these texts needs (one request per chunk).
    ``texts``: strings, or lengths in characters when ``exact`` is False."""
    overhead = prompt_overhead_chars()
    requests = chars = 0
    for text in texts:
        if exact:
            chunks = chunk_text(text, config.chunk_chars, config.overlap_chars)
            requests += len(chunks)
            chars += sum(len(c) for c in chunks)
        else:
            n = estimated_chunks(int(text or 0), config.chunk_chars, config.overlap_chars)
            requests += n
            chars += int(text or 0) + max(0, n - 1) * config.overlap_chars
    prompt = math.ceil((chars + requests * overhead) / CHARS_PER_TOKEN)
    return Estimate(requests, prompt, requests * COMPLETION_TOKENS_PER_REQUEST, config.max_requests_per_batch)


# ---------------------------------------------------------------- extraction


def _retryable(exc):
    if isinstance(exc, (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError)):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


def _describe(exc):
    if isinstance(exc, openai.APITimeoutError):
        return "request timed out"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code} from the LLM endpoint"
    if isinstance(exc, openai.APIConnectionError):
        return "could not connect to the LLM endpoint"
    return type(exc).__name__


@dataclass
class Reply:
    content: str
    parsed: ExtractionResponse | None = None  # set when the client's parse validated it
    finish_reason: str = ""


class LLMExtractor:
    """Extract records from a text, chunk by chunk. ``usage`` accumulates token counts;
    ``budget`` (a RequestBudget, optional) caps the requests."""

    prompt_version = PROMPT_VERSION

    def __init__(self, config, *, sleep=time.sleep, budget=None):
        self.config = config
        self.sleep = sleep
        self.budget = budget
        self.client = openai.OpenAI(
            base_url=config.base_url, api_key=config.api_key, timeout=config.timeout_s, max_retries=0
        )

    @property
    def name(self):
        return f"llm:{self.config.model}"

    def _request(self, messages, usage):
        if self.budget is not None:
            self.budget.take()
        raw = self.client.chat.completions.with_raw_response.parse(
            model=self.config.model, messages=messages, temperature=0, response_format=ExtractionResponse,
        )
        try:
            body = raw.http_response.json()
        except ValueError:
            body = {}
        usage.add(body.get("usage") if isinstance(body, dict) else None)
        choices = (body.get("choices") if isinstance(body, dict) else None) or []
        if not choices:
            return Reply("")
        message = choices[0].get("message") or {}
        reply = Reply(message.get("content") or "", finish_reason=choices[0].get("finish_reason") or "")
        if message.get("refusal") and not reply.content:
            raise ExtractionError(f"The LLM refused: {str(message['refusal'])[:300]}")
        if reply.finish_reason == "length":
            raise ExtractionError("The LLM reply was cut off at its token limit (try smaller chunks: GLASSLOOP_LLM_CHUNK_CHARS).")
        try:
            reply.parsed = raw.parse().choices[0].message.parsed
        except (pydantic.ValidationError, openai.OpenAIError, ValueError, TypeError):
            reply.parsed = None  # parse_reply says why (and tolerates a code fence)
        return reply

    def _complete(self, messages, usage):
        """The reply; retried with exponential backoff on transient failures."""
        last = None
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                return self._request(messages, usage)
            except openai.APIError as exc:
                if not _retryable(exc):
                    raise ExtractionError(f"LLM request refused: {_describe(exc)}.") from None
                last = exc
                if attempt < self.config.max_attempts:
                    delay = min(self.config.backoff_base_s * 2 ** (attempt - 1), self.config.backoff_max_s)
                    logger.warning("LLM attempt %d/%d failed (%s); retrying in %.2fs",
                                   attempt, self.config.max_attempts, _describe(exc), delay)
                    self.sleep(delay)
        raise ExtractionError(f"LLM request failed after {self.config.max_attempts} attempts: {_describe(last)}.")

    @staticmethod
    def _records(reply):
        return (reply.parsed or parse_reply(reply.content)).records

    def extract_chunk(self, chunk, usage):
        messages = build_messages(chunk)
        reply = self._complete(messages, usage)
        try:
            return self._records(reply)
        except ValueError as first:
            repaired = self._complete(build_repair_messages(messages, reply.content, str(first)), usage)
            try:
                return self._records(repaired)
            except ValueError as second:
                raise ExtractionError(f"The LLM reply was invalid after one repair attempt: {second}.") from None

    def extract(self, text, usage):
        records = []
        chunks = chunk_text(text, self.config.chunk_chars, self.config.overlap_chars)
        for chunk in chunks:
            records += [r.to_raw() for r in self.extract_chunk(chunk, usage)]
        return merge_records(records)
