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
    """

    def __init__(self):
        self.script = []
        self.default = {"content": json.dumps({"records": []})}
        self.requests = []
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
            content = item["content"]
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
