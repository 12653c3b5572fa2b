"""A small OpenAI-compatible server on 127.0.0.1 that misbehaves on request (tests only).

The model id picks the behaviour: ``ok`` streams "Hello from the fake server." word by word;
``slow-ok`` the same with 0.2 s between words; ``unauthorized`` 401; ``busy`` 429 with
Retry-After; ``fail`` 500; ``garbage`` a stream that is not JSON; ``not-object`` JSON that is
not an object; ``cut`` closes the connection after two words; ``silent`` never answers;
``huge`` sends one line larger than the client reads. Any other model is 404. The server
checks ``Authorization: Bearer <key>`` when made with a key, and records every request.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = ["Hello", " from", " the", " fake", " server."]
MODELS = ["ok", "slow-ok", "unauthorized", "busy", "fail", "garbage", "not-object", "cut",
          "silent", "huge"]


class FakeOpenAI:
    def __init__(self, key: str = "") -> None:
        self.key = key
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _json(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if server.key and self.headers.get("Authorization") != f"Bearer {server.key}":
                    self._json(401, {"error": {"message": "Invalid API key"}})
                    return False
                return True

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                if not self._authorized():
                    return
                if self.path == "/v1/models":
                    self._json(200, {"object": "list",
                                     "data": [{"id": m, "object": "model"} for m in MODELS]})
                else:
                    self._json(404, {"error": {"message": "no such endpoint"}})

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                try:
                    self._post()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading (Stop): fine

            def _post(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append({"path": self.path, "body": body,
                                        "auth": self.headers.get("Authorization", "")})
                if not self._authorized():
                    return
                model = body.get("model")
                if model == "unauthorized":
                    return self._json(403, {"error": {"message": "forbidden for you"}})
                if model == "busy":
                    return self._json(429, {"error": {"message": "too many requests"}},
                                      {"Retry-After": "7"})
                if model == "fail":
                    return self._json(500, {"error": {"message": "CUDA error: device lost"}})
                if model == "silent":
                    time.sleep(30)
                    return
                if model not in MODELS:
                    return self._json(404, {"error": {"message": f"model '{model}' not found"}})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                if model == "garbage":
                    self.wfile.write(b"data: <html>oops</html>\n\n")
                    return
                if model == "not-object":
                    self.wfile.write(b"data: [1, 2, 3]\n\n")
                    return
                if model == "huge":
                    self.wfile.write(b"data: " + b"x" * (2 << 20) + b"\n\n")
                    return
                chat = self.path.endswith("/chat/completions")
                for index, word in enumerate(WORDS):
                    if model == "cut" and index == 2:
                        return  # the connection closes mid-reply
                    choice = {"index": 0, "finish_reason": None}
                    choice.update({"delta": {"content": word}} if chat else {"text": word})
                    event = {"id": "x", "object": "chunk", "system_fingerprint": "fp_fake_1",
                             "choices": [choice]}
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                    if model == "slow-ok":
                        time.sleep(0.2)
                end = {"choices": [{"index": 0, "delta": {}, "text": "",
                                    "finish_reason": "stop"}],
                       "usage": {"completion_tokens": len(WORDS)}}
                self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
