"""LLM extraction through the official ``openai`` client and any OpenAI-compatible endpoint.

The client's own retries are off (``max_retries=0``): we retry here, with exponential
backoff, on 429, 5xx, timeouts and connection errors, so the policy is ours and testable.
An invalid reply gets one repair request; if that fails too the source's extraction fails
with a clear message. The configuration comes from Django settings (config/settings.py reads
it from the environment, strictly); the API key is passed to the client and never logged,
stored or put in an error message.
"""

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Literal

import openai
from django.conf import settings as django_settings
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ml.rules import temperature_unit

from .extractors import RawRecord, chunk_text
from .prompts import PROMPT_VERSION, build_messages, build_repair_messages

logger = logging.getLogger(__name__)


class ExtractionError(Exception):
    """Extraction of one source failed; the message says why (and is shown to reviewers)."""


# ---------------------------------------------------------------- response schema


class LLMRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    composition: str = Field(min_length=1, max_length=255)
    tg: float | None = None
    tx: float | None = None
    tl: float | None = None
    unit: Literal["K", "C"] = "K"
    dmax_mm: float | None = Field(default=None, ge=0, le=1000)
    heating_rate_k_min: float | None = Field(default=None, gt=0, le=100000)
    snippet: str = Field(default="", max_length=4000)

    @field_validator("unit", mode="before")
    @classmethod
    def _unit(cls, value):
        # "K" or "C" however the model wrote it (ml.rules); anything else fails the Literal.
        return temperature_unit(value or "K") or str(value).strip()

    @field_validator("composition", "snippet", mode="before")
    @classmethod
    def _strip(cls, value):
        return value.strip() if isinstance(value, str) else value

    def to_raw(self):
        values = {p: (getattr(self, p), self.unit) for p in ("tg", "tx", "tl") if getattr(self, p) is not None}
        return RawRecord(
            composition=self.composition, values=values, dmax_mm=self.dmax_mm,
            heating_rate_k_min=self.heating_rate_k_min, snippet=self.snippet,
        )


class ExtractionResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    records: list[LLMRecord]


FENCE_RE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_reply(content):
    """ExtractionResponse from the model's reply; raises ValueError with a short reason."""
    if not content or not content.strip():
        raise ValueError("the reply was empty")
    text = content.strip()
    fenced = FENCE_RE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if isinstance(data, list):  # a bare list of records is accepted as the records
        data = {"records": data}
    try:
        return ExtractionResponse.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise ValueError(f"JSON does not follow the schema ({problems})") from None


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
        )

@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0

    def add(self, usage):
        self.requests += 1
        if usage is not None:
            self.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
            self.completion_tokens += int(getattr(usage, "completion_tokens", 0) or 0)


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


class LLMExtractor:
    """Extract records from a text, chunk by chunk. ``usage`` accumulates token counts."""

    prompt_version = PROMPT_VERSION

    def __init__(self, config, *, sleep=time.sleep):
        self.config = config
        self.sleep = sleep
        self.client = openai.OpenAI(
            base_url=config.base_url, api_key=config.api_key, timeout=config.timeout_s, max_retries=0
        )

    @property
    def name(self):
        return f"llm:{self.config.model}"

    def _complete(self, messages, usage):
        """The reply text; retried with exponential backoff on transient failures."""
        last = None
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                response = self.client.chat.completions.create(
                    model=self.config.model,
                    messages=messages,
                    temperature=0,
                    response_format={"type": "json_object"},
                )
            except openai.APIError as exc:
                if not _retryable(exc):
                    raise ExtractionError(f"LLM request refused: {_describe(exc)}.") from None
                last = exc
                if attempt < self.config.max_attempts:
                    delay = min(self.config.backoff_base_s * 2 ** (attempt - 1), self.config.backoff_max_s)
                    logger.warning("LLM attempt %d/%d failed (%s); retrying in %.2fs",
                                   attempt, self.config.max_attempts, _describe(exc), delay)
                    self.sleep(delay)
                continue
            usage.add(getattr(response, "usage", None))
            if not response.choices:
                return ""
            return response.choices[0].message.content or ""
        raise ExtractionError(f"LLM request failed after {self.config.max_attempts} attempts: {_describe(last)}.")

    def extract_chunk(self, chunk, usage):
        messages = build_messages(chunk)
        reply = self._complete(messages, usage)
        try:
            return parse_reply(reply).records
        except ValueError as first:
            repaired = self._complete(build_repair_messages(messages, reply, str(first)), usage)
            try:
                return parse_reply(repaired).records
            except ValueError as second:
                raise ExtractionError(f"The LLM reply was invalid after one repair attempt: {second}.") from None

    def extract(self, text, usage):
        records = []
        chunks = chunk_text(text, self.config.chunk_chars, self.config.overlap_chars)
        for chunk in chunks:
            records += [r.to_raw() for r in self.extract_chunk(chunk, usage)]
        return records
