"""Mining fixtures: a fake OpenAI-compatible HTTP server on 127.0.0.1 (the real `openai`
client talks to it over real HTTP), and uploads kept in a temporary MEDIA_ROOT."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class FakeLLM:
    """Scripted replies for POST /v1/chat/completions, one per request, in order.

    Each script item: {"content": str} (200 with usage), {"status": 429|500, ...},
    or {"sleep": seconds, "content": ...} to outlast the client's timeout. When the script
    is exhausted the ``default`` item is used. Every request body is kept in ``requests``.

    {"follow_schema": True} answers like a server that follows the request's JSON schema:
    from the scripted truth records (``truth``: dicts in the project's own words, e.g.
    {"composition": ..., "tg": {"value": 683, "unit": "K"}, "dmax_mm": 5, "snippet": ...})
    whose snippet occurs in the request's paper text (so each chunk gets its own records),
    it builds a reply that has exactly the properties the schema declares (a name the truth
    does not know gets null). Add "extra_keys": {name: value} to put undeclared keys in each
    record. A request without a JSON schema (``json_object`` mode) gets the records in the
    fake model's own words (``Tg_K``, ``Tx_K``, ``Tl_K`` in K), as a real server would.
    """

    def __init__(self):
        self.script = []
        self.default = {"content": json.dumps({"records": []})}
        self.requests = []
        self.truth = []
        self.lock = threading.Lock()

    def next_item(self, body):
        with self.lock:
            self.requests.append(body)
            return self.script.pop(0) if self.script else self.default


def _handler(fake):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._send(404, {"error": {"message": "not found"}})
            body["_authorization"] = self.headers.get("Authorization", "")
            item = fake.next_item(body)
            if item.get("sleep"):
                time.sleep(item["sleep"])
            status = item.get("status", 200)
            if status != 200:
                return self._send(status, {"error": {"message": f"scripted {status}", "type": "test"}})
            content = item["content"] if "content" in item else schema_reply(fake.truth, body, item.get("extra_keys"))
            self._send(200, {
                "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": body.get("model", "m"),
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": item.get("prompt_tokens", 100), "completion_tokens": item.get("completion_tokens", 20),
                          "total_tokens": item.get("prompt_tokens", 100) + item.get("completion_tokens", 20)},
            })

        def _send(self, status, payload):
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                pass

    return Handler


BEGIN, END = "<<<BEGIN_PAPER_TEXT>>>", "<<<END_PAPER_TEXT>>>"


def _paper_text(body):
    """The paper text of the request (a repair request repeats it earlier in its messages)."""
    for message in reversed(body.get("messages") or []):
        content = message.get("content") or ""
        if message.get("role") == "user" and BEGIN in content and END in content:
            return content.split(BEGIN, 1)[1].rsplit(END, 1)[0]
    return ""


def _squash(text):
    return " ".join((text or "").split())


def _resolve(schema, defs):
    while isinstance(schema, dict) and "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _fill(schema, value, defs):
    """``value`` shaped by ``schema``: objects get exactly the declared properties."""
    schema = _resolve(schema, defs)
    if "anyOf" in schema:
        options = [_resolve(o, defs) for o in schema["anyOf"]]
        if value is None and any(o.get("type") == "null" for o in options):
            return None
        return _fill(next(o for o in options if o.get("type") != "null"), value, defs)
    kind = schema.get("type")
    if kind == "object":
        value = value if isinstance(value, dict) else {}
        return {name: _fill(sub, value.get(name), defs) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [_fill(schema.get("items") or {}, v, defs) for v in (value or [])]
    if isinstance(value, dict) and kind in ("number", "integer"):  # {"value", "unit"} asked as a bare number
        return value.get("value")
    if value is None:
        return {"string": "", "number": 0, "integer": 0, "boolean": False}.get(kind)
    return value


def _own_words(record):
    """The fake model's own key names, used when the request gives no schema."""
    out = {"alloy": record.get("composition"), "snippet": record.get("snippet", "")}
    for prop in ("tg", "tx", "tl"):
        t = record.get(prop)
        if t:
            out[f"{prop.capitalize()}_K"] = t["value"] + 273.15 if t["unit"] == "C" else t["value"]
    return out


def schema_reply(truth, body, extra_keys=None):
    text = _squash(_paper_text(body))
    records = [r for r in truth if _squash(r.get("snippet")) and _squash(r.get("snippet")) in text]
    fmt = body.get("response_format") or {}
    if fmt.get("type") != "json_schema":
        return json.dumps({"records": [_own_words(r) for r in records]})
    schema = fmt["json_schema"]["schema"]
    reply = _fill(schema, {"records": records}, schema.get("$defs") or schema.get("definitions") or {})
    if extra_keys:
        for rec in reply.get("records", []):
            rec.update(extra_keys)
    return json.dumps(reply)


@pytest.fixture
def fake_llm(settings):
    fake = FakeLLM()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    fake.base_url = f"http://127.0.0.1:{port}/v1"
    settings.OPENAI_BASE_URL = fake.base_url
    settings.OPENAI_API_KEY = "sk-test-secret-key-123"
    settings.GLASSLOOP_LLM_MODEL = "fake-model"
    settings.GLASSLOOP_LLM_BACKOFF_S = 0.01
    settings.GLASSLOOP_LLM_TIMEOUT_S = 1.0
    settings.GLASSLOOP_LLM_MAX_ATTEMPTS = 3
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def no_llm_env(settings):
    """Tests start with no LLM configured, whatever the environment says (the fake_llm fixture sets it)."""
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "GLASSLOOP_LLM_MODEL"):
        setattr(settings, name, "")


def records_json(*records):
    return json.dumps({"records": list(records)})
