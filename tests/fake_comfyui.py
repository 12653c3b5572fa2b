"""A scripted, possibly hostile ComfyUI on 127.0.0.1 (tests only): HTTP routes answer what a
test sets, and ``/ws`` sends the test's frames (text or binary, even malformed) after a real
WebSocket handshake, then closes or stays open."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
STATS = {"system": {"os": "posix", "python_version": "3.11", "comfyui_version": "0.3.40"},
         "devices": [{"name": "cuda:0 NVIDIA Fake", "type": "cuda", "vram_total": 8 << 30,
                      "vram_free": 6 << 30}]}


def frame(payload: bytes | str, opcode: int | None = None) -> bytes:
    """One unmasked server frame (text for str, binary for bytes)."""
    if isinstance(payload, str):
        payload, opcode = payload.encode(), opcode or 1
    opcode = opcode or 2
    head = bytes([0x80 | opcode])
    if len(payload) < 126:
        head += bytes([len(payload)])
    elif len(payload) < 1 << 16:
        head += bytes([126]) + struct.pack(">H", len(payload))
    else:
        head += bytes([127]) + struct.pack(">Q", len(payload))
    return head + payload


class FakeComfy:
    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.ws_frames: list[bytes] = []
        self.ws_close = True  # close the socket after the frames
        self.requests: list[tuple[str, str, bytes]] = []
        self.headers: list[tuple[str, str, dict[str, str]]] = []  # method, path, headers
        self.set("/system_stats", STATS)
        self.set("/prompt", {"prompt_id": "p-1", "number": 1, "node_errors": {}})
        self.set("/queue", {"queue_running": [], "queue_pending": []})
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # websockets needs it for the 101

            def log_message(self, *args) -> None:
                pass

            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urlsplit(self.path).path
                fake.requests.append((method, self.path, body))
                fake.headers.append((method, path, dict(self.headers.items())))
                if path == "/ws":
                    return self._websocket()
                status, data = fake.routes.get(f"{method} {path}") or \
                    fake.routes.get(path) or (404, b"")
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _websocket(self) -> None:
                key = self.headers.get("Sec-WebSocket-Key", "")
                accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest())
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", accept.decode())
                self.end_headers()
                self.wfile.flush()
                time.sleep(0.2)  # the client queues its prompt first
                for data in fake.ws_frames:
                    self.wfile.write(data)
                    self.wfile.flush()
                if not fake.ws_close:
                    time.sleep(30)
                self.close_connection = True

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                self._answer("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._answer("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set(self, route: str, value, status: int = 200) -> None:
        data = value if isinstance(value, bytes) else json.dumps(value).encode()
        self.routes[route] = (status, data)

    def events(self, *messages) -> None:
        """The socket's frames: dicts as JSON text, bytes as binary, str as raw text."""
        self.ws_frames = [frame(json.dumps(m) if isinstance(m, dict) else m) for m in messages]

    def finished(self, prompt_id: str = "p-1", images=None) -> None:
        """A job that runs, saves ``images`` (default one PNG) and ends."""
        images = images if images is not None else [{"filename": "a.png", "subfolder": "",
                                                     "type": "output"}]
        self.events({"type": "execution_start", "data": {"prompt_id": prompt_id}},
                    {"type": "progress", "data": {"value": 1, "max": 2, "prompt_id": prompt_id}},
                    {"type": "executing", "data": {"node": None, "prompt_id": prompt_id}})
        self.set(f"/history/{prompt_id}", {prompt_id: {"outputs": {"9": {"images": images}},
                                                       "status": {"status_str": "success"}}})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
