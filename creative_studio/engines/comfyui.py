"""A client for ComfyUI servers: the HTTP + websocket API that Krita AI Diffusion, SwarmUI and
ComfyUI's own page use (no Qt, no torch).

- ``GET /system_stats`` (version, device, memory), ``GET /object_info/<node>`` (checkpoints,
  samplers, schedulers, upscale models);
- a job: the websocket ``/ws?clientId=…`` is opened first, then ``POST /prompt`` with the
  same ``client_id``; ``progress``, ``executing``, ``executed``, ``execution_*`` messages and
  binary preview frames arrive on the socket; the outputs are read from
  ``GET /history/<prompt_id>`` and fetched with ``GET /view``;
- Stop: ``POST /interrupt`` while the job runs, ``POST /queue {"delete": […]}`` while it
  waits; ``POST /upload/image`` sends an input picture (under a neutral name: no local path
  ever leaves this computer).

Every reply is untrusted input: JSON bodies and socket messages are bounded and their types
checked, file names are checked before they are asked for, images are decoded with the
studio's bomb limits (io/images.py). A server that goes away mid-job raises ``ServerGone``.
"""

from __future__ import annotations

import json
import re
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .openai import (
    NotOnServer,
    ServerError,
    ServerGone,
    _error_body,
    _error_detail,
    _read_bounded,
    _reason,
    _status_error,
)

MAX_BODY = 4 << 20  # replies other than /object_info and images
MAX_OBJECT_INFO = 64 << 20  # /object_info of a server with many custom nodes
MAX_IMAGE = 256 << 20  # one output picture (the pixel limit is checked on decoding)
MAX_MESSAGE = 32 << 20  # one websocket message (previews are small JPEG/PNG frames)
MAX_NAMES = 20_000  # entries of a list of checkpoints/samplers
POLL = 0.05  # how often a waiting job looks at Stop (s)
SILENCE_CHECK = 10.0  # seconds without a message for our job before asking /queue
CHOICES_TTL = 60.0  # seconds a server's lists of models, samplers… are trusted
MODEL_LISTS = ("checkpoints", "upscale_models")  # a model missing here may be on another
PREVIEW_IMAGE = 1  # server.BinaryEventTypes
_SAFE_NAME = re.compile(r"^[^\x00-\x1f]{1,255}\Z")
_SAFE_FOLDER = re.compile(r"^[^\x00-\x1f]{0,255}\Z")


@dataclass
class ServerInfo:
    """What ``/system_stats`` says (``version`` is "" for ComfyUI before 0.2)."""

    version: str = ""
    python: str = ""
    devices: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        parts = [f"ComfyUI {self.version}" if self.version else "ComfyUI (version not given)"]
        for device in self.devices[:4]:
            free, total = device.get("vram_free"), device.get("vram_total")
            memory = f", {free / 2**30:.1f} GB free of {total / 2**30:.1f} GB" \
                if isinstance(free, int | float) and isinstance(total, int | float) and total \
                else ""
            parts.append(f"{device.get('type', '?')}: {device.get('name', '?')}{memory}")
        return "; ".join(parts)


@dataclass
class Output:
    """One picture a job made, as ComfyUI names it (``type`` output or temp)."""

    filename: str
    subfolder: str = ""
    type: str = "output"
    node: str = ""


@dataclass
class Run:
    """A finished job: its prompt id, its pictures, and how long it waited in the queue."""

    prompt_id: str
    outputs: list[Output]
    queued_s: float = 0.0
    seconds: float = 0.0


class ComfyClient:
    def __init__(self, url: str, token: str = "", *, connect_timeout: float = 5.0,
                 read_timeout: float = 60.0, transport: Any = None,
                 client_id: str = "") -> None:
        import httpx

        self.url = url.rstrip("/")
        self.token = token
        self.client_id = client_id or uuid.uuid4().hex
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(headers=headers, transport=transport, follow_redirects=False,
                                  timeout=httpx.Timeout(read_timeout, connect=connect_timeout))
        self.read_timeout = read_timeout
        self.connect_timeout = connect_timeout
        self._lists: dict[str, tuple[float, list[str]]] = {}  # what → (asked at, names)
        self._info: ServerInfo | None = None

    def close(self) -> None:
        self._http.close()

    # -- plain requests ---------------------------------------------------------------------
    def _send(self, method: str, path: str, *, body: Any = None, params: dict | None = None,
              files: dict | None = None, limit: int = MAX_BODY, raw: bool = False) -> Any:
        """The reply (a JSON value, or bytes with ``raw``); every failure is a ServerError
        with a plain message. Connection errors are not retried: nothing is sent twice."""
        import httpx

        try:
            request = self._http.build_request(method, self.url + path, json=body,
                                               params=params, files=files)
            response = self._http.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ServerGone(f"Cannot reach the ComfyUI server at {self.url} "
                             f"({_reason(exc)}). Is it running, and is the address right?") \
                from exc
        except httpx.TimeoutException as exc:
            raise ServerError(f"The ComfyUI server at {self.url} did not answer within "
                              f"{self.read_timeout:g} s.") from exc
        except httpx.HTTPError as exc:
            raise ServerGone(f"The request to {self.url} failed ({_reason(exc)}).") from exc
        try:
            if response.status_code >= 400:
                data = _error_body(response, 256 << 10)
                raise _comfy_status(response.status_code, data, self.url,
                                    response.headers.get("retry-after"))
            try:
                data = _read_bounded(response, limit)
            except httpx.HTTPError as exc:
                raise ServerGone(f"The connection to {self.url} broke off "
                                 f"({_reason(exc)}).") from exc
        finally:
            response.close()
        if raw:
            return data
        try:
            return json.loads(data) if data.strip() else None
        except (ValueError, RecursionError):
            raise _garbage(self.url, "a reply that is not JSON") from None

    def system_stats(self) -> ServerInfo:
        reply = self._send("GET", "/system_stats")
        if not isinstance(reply, dict) or not isinstance(reply.get("system"), dict):
            raise _garbage(self.url, "no 'system' in /system_stats")
        system = reply["system"]
        devices = []
        for device in reply.get("devices") or []:
            if isinstance(device, dict):
                devices.append({k: device[k] for k in ("name", "type", "vram_total",
                                                       "vram_free")
                                if isinstance(device.get(k), str | int | float)
                                and not isinstance(device.get(k), bool)})
                for key in ("name", "type"):
                    devices[-1][key] = str(devices[-1].get(key, "?"))[:200]
        version = system.get("comfyui_version")
        return ServerInfo(version=version[:40] if isinstance(version, str) else "",
                          python=str(system.get("python_version", ""))[:40],
                          devices=devices[:16])

    def node_info(self, node: str) -> dict:
        """``/object_info/<node>``: the node's declared inputs ({} if the server lacks it)."""
        reply = self._send("GET", f"/object_info/{node}", limit=MAX_OBJECT_INFO)
        if not isinstance(reply, dict):
            raise _garbage(self.url, "an /object_info reply that is not an object")
        info = reply.get(node)
        return info if isinstance(info, dict) else {}

    def input_choices(self, node: str, name: str) -> list[str]:
        """The values a node's combo input offers (checkpoint names, samplers…)."""
        info = self.node_info(node)
        inputs = info.get("input")
        spec = None
        if isinstance(inputs, dict):
            for group in ("required", "optional"):
                table = inputs.get(group)
                if isinstance(table, dict) and name in table:
                    spec = table[name]
        if not isinstance(spec, list) or not spec:
            return []
        values = spec[0]
        if isinstance(values, str) and values == "COMBO" and len(spec) > 1 \
                and isinstance(spec[1], dict):  # the newer COMBO form
            values = spec[1].get("options")
        if not isinstance(values, list):
            return []
        return [v for v in values[:MAX_NAMES] if isinstance(v, str) and _SAFE_NAME.match(v)]

    def checkpoints(self) -> list[str]:
        return self.input_choices("CheckpointLoaderSimple", "ckpt_name")

    def samplers(self) -> list[str]:
        return self.input_choices("KSampler", "sampler_name")

    def schedulers(self) -> list[str]:
        return self.input_choices("KSampler", "scheduler")

    def upscale_models(self) -> list[str]:
        return self.input_choices("UpscaleModelLoader", "model_name")

    def checkpoint_sha256(self, name: str) -> str:
        """The SHA-256 a checkpoint's own metadata declares (``/view_metadata``; "" when the
        file declares none or the server cannot say)."""
        try:
            reply = self._send("GET", "/view_metadata/checkpoints", params={"filename": name})
        except ServerGone:
            raise
        except ServerError:
            return ""
        for key in ("modelspec.hash_sha256", "sshs_model_hash"):
            value = reply.get(key) if isinstance(reply, dict) else None
            if isinstance(value, str) and re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", value):
                return value.lower().removeprefix("0x")
        return ""

    def info(self) -> ServerInfo:
        """``system_stats()``, asked once per client."""
        if self._info is None:
            self._info = self.system_stats()
        return self._info

    def offered(self, what: str) -> list[str]:
        """``checkpoints``, ``samplers``, ``schedulers`` or ``upscale_models``, asked again
        after CHOICES_TTL seconds."""
        asked, names = self._lists.get(what, (0.0, []))
        if not asked or time.monotonic() - asked > CHOICES_TTL:
            names = getattr(self, what)()
            self._lists[what] = (time.monotonic(), names)
        return names

    def require(self, value: str, what: str, label: str, server: str) -> None:
        """Refuse a ``value`` the server does not offer, saying what it has: a missing model
        is NotOnServer (another server of a pool may have it), a missing sampler or schedule
        BadInput (checked only when the server lists any)."""
        from ..core.errors import BadInput

        offered = self.offered(what)
        if value in offered or (what not in MODEL_LISTS and not offered):
            return
        shown = ", ".join(offered[:12]) + (" …" if len(offered) > 12 else "")
        error = NotOnServer if what in MODEL_LISTS else BadInput
        raise error(f"{server} has no {label} '{value}' (it has: {shown or 'none'}).")

    def queue_state(self, prompt_id: str) -> str:
        """"running", "pending" or "absent"."""
        reply = self._send("GET", "/queue")
        if not isinstance(reply, dict):
            raise _garbage(self.url, "a /queue reply that is not an object")
        for state, key in (("running", "queue_running"), ("pending", "queue_pending")):
            entries = reply.get(key)
            if isinstance(entries, list) and any(
                    isinstance(e, list) and len(e) > 1 and e[1] == prompt_id
                    for e in entries[:100_000]):
                return state
        return "absent"

    def history(self, prompt_id: str) -> dict | None:
        """The history entry of a prompt (None until it finished)."""
        reply = self._send("GET", f"/history/{prompt_id}", limit=MAX_OBJECT_INFO)
        if reply is None:
            return None
        if not isinstance(reply, dict):
            raise _garbage(self.url, "a /history reply that is not an object")
        entry = reply.get(prompt_id)
        return entry if isinstance(entry, dict) else None

    def outputs(self, prompt_id: str) -> list[Output]:
        """The pictures a finished prompt saved (SaveImage; PreviewImage's temp files too)."""
        entry = self.history(prompt_id)
        if entry is None:
            raise ServerError(f"The ComfyUI server at {self.url} has no record of the job it "
                              "just finished.")
        status = entry.get("status")
        if isinstance(status, dict) and status.get("status_str") == "error":
            raise ServerError(f"The ComfyUI server at {self.url} says the job failed"
                              f"{_message_of(status.get('messages'))}.")
        found = []
        outputs = entry.get("outputs")
        for node, output in (outputs.items() if isinstance(outputs, dict) else ()):
            images = output.get("images") if isinstance(output, dict) else None
            for image in (images if isinstance(images, list) else [])[:1000]:
                if not isinstance(image, dict):
                    continue
                name, folder, kind = (image.get("filename"), image.get("subfolder", ""),
                                      image.get("type", "output"))
                if not (isinstance(name, str) and _SAFE_NAME.match(name)
                        and isinstance(folder, str) and _SAFE_FOLDER.match(folder)
                        and kind in ("output", "temp")):
                    raise _garbage(self.url, "an output picture named oddly")
                found.append(Output(name, folder, kind, str(node)[:64]))
        # saved pictures before previews, then in node order (numbers as numbers: node 9
        # before node 12), then by name
        found.sort(key=lambda o: (o.type != "output", not o.node.isdigit(),
                                  int(o.node) if o.node.isdigit() else 0, o.node, o.filename))
        return found

    def image(self, output: Output) -> bytes:
        """An output picture's bytes (``/view``), checked to be an image of a sane size."""
        from ..io.images import decode_image

        data = self._send("GET", "/view", params={"filename": output.filename,
                                                   "subfolder": output.subfolder,
                                                   "type": output.type},
                          limit=MAX_IMAGE, raw=True)
        decode_image(data, f"The picture {output.filename} from {self.url}")
        return data

    def upload_image(self, png: bytes, name: str) -> str:
        """Send an input picture; returns the name the server stored it under."""
        reply = self._send("POST", "/upload/image",
                           files={"image": (name, png, "image/png"),
                                  "overwrite": (None, "true")})
        stored = reply.get("name") if isinstance(reply, dict) else None
        if not isinstance(stored, str) or not _SAFE_NAME.match(stored):
            raise _garbage(self.url, "an upload reply without the file's name")
        folder = reply.get("subfolder") or ""
        return f"{folder}/{stored}" if isinstance(folder, str) and folder else stored

    def submit(self, workflow: dict, extra: dict | None = None) -> str:
        """Queue an API-format workflow; its prompt id. A workflow the server refuses says
        which node and why."""
        body: dict[str, Any] = {"prompt": workflow, "client_id": self.client_id}
        if extra:
            body["extra_data"] = extra
        reply = self._send("POST", "/prompt", body=body)
        prompt_id = reply.get("prompt_id") if isinstance(reply, dict) else None
        if not isinstance(prompt_id, str) or not 0 < len(prompt_id) <= 128:
            raise _garbage(self.url, "no prompt_id for the queued job")
        return prompt_id

    def delete(self, prompt_id: str) -> None:
        self._send("POST", "/queue", body={"delete": [prompt_id]})

    # -- a whole job ----------------------------------------------------------------------
    def run(self, workflow: dict, *, cancelled: Callable[[], bool] = lambda: False,
            on_progress: Callable[[int, int, str], None] | None = None,
            on_preview: Callable[[bytes], None] | None = None,
            on_status: Callable[[str], None] | None = None, extra: dict | None = None) -> Run:
        """Queue ``workflow`` and follow it to its end over the websocket. Stop (``cancelled``)
        interrupts it or takes it out of the queue and raises Cancelled; a server that goes
        away raises ServerGone; a failing node raises ServerError with the node's message."""
        from ..core.errors import Cancelled

        started = time.monotonic()
        with self._connect() as socket:
            prompt_id = self.submit(workflow, extra)
            state = {"started": None, "done": False, "error": "", "interrupted": False,
                     "heard": time.monotonic()}
            while not state["done"]:
                if cancelled():
                    self._stop(prompt_id, socket)
                    raise Cancelled()
                message = self._receive(socket)
                if message is None:
                    if time.monotonic() - state["heard"] > SILENCE_CHECK:
                        self._check_alive(prompt_id, state, on_status)
                    continue
                self._handle(message, prompt_id, state, on_progress, on_preview, on_status)
                if state["error"]:
                    raise ServerError(state["error"])
                if state["interrupted"]:
                    if cancelled():
                        raise Cancelled()
                    raise ServerError(f"The job was interrupted on the ComfyUI server at "
                                      f"{self.url} (by someone else).")
        queued = (state["started"] or time.monotonic()) - started
        outputs = self.outputs(prompt_id)
        return Run(prompt_id, outputs, round(queued, 3), round(time.monotonic() - started, 3))

    def _connect(self):
        from websockets.exceptions import InvalidHandshake, InvalidURI
        from websockets.sync.client import connect

        parts = urlsplit(self.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        uri = f"{scheme}://{parts.netloc}{parts.path}/ws?clientId={self.client_id}"
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        try:
            return connect(uri, additional_headers=headers, open_timeout=self.connect_timeout,
                           max_size=MAX_MESSAGE, proxy=None, compression=None)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise ServerGone(f"Cannot open the ComfyUI server's event stream at {self.url} "
                             f"({_reason(exc)}).") from exc

    def _receive(self, socket) -> str | bytes | None:
        from websockets.exceptions import ConnectionClosed, PayloadTooBig, ProtocolError

        try:
            return socket.recv(timeout=POLL)
        except TimeoutError:
            return None
        except PayloadTooBig as exc:
            raise _garbage(self.url, "an event larger than the studio reads") from exc
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == 1009:  # we closed it: too big
                raise _garbage(self.url, "an event larger than the studio reads") from exc
            raise ServerGone(f"The ComfyUI server at {self.url} went away mid-job "
                             f"({_reason(exc)}); nothing of this job was saved.") from exc
        except (ProtocolError, OSError) as exc:
            raise ServerGone(f"The ComfyUI server at {self.url} went away mid-job "
                             f"({_reason(exc)}); nothing of this job was saved.") from exc

    def _handle(self, message: str | bytes, prompt_id: str, state: dict,
                on_progress, on_preview, on_status) -> None:
        if isinstance(message, bytes):
            if len(message) > 8 and on_preview is not None and state["started"] is not None:
                kind, _format = struct.unpack(">II", message[:8])
                if kind == PREVIEW_IMAGE:
                    on_preview(message[8:])
            return
        try:
            data = json.loads(message)
        except (ValueError, RecursionError):
            raise _garbage(self.url, "an event that is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise _garbage(self.url, "an event without a type")
        kind, body = data["type"], data.get("data")
        if not isinstance(body, dict):
            return
        if kind == "status":
            status = body.get("status")
            info = status.get("exec_info") if isinstance(status, dict) else None
            left = info.get("queue_remaining") if isinstance(info, dict) else None
            if state["started"] is None and isinstance(left, int) and on_status:
                on_status(f"Waiting in the server's queue ({left} job{'s' * (left != 1)})")
            return
        if body.get("prompt_id") not in (prompt_id, None):
            return  # another client's job (newer servers broadcast some events)
        state["heard"] = time.monotonic()
        if kind in ("execution_start", "executing", "progress", "execution_cached") \
                and state["started"] is None:
            state["started"] = time.monotonic()
            if on_status:
                on_status("Running on the server")
        if kind == "executing" and body.get("node") is None \
                and body.get("prompt_id") == prompt_id:
            state["done"] = True
        elif kind == "execution_success" and body.get("prompt_id") == prompt_id:
            state["done"] = True
        elif kind == "progress":
            value, total = body.get("value"), body.get("max")
            if isinstance(value, int) and isinstance(total, int) and total > 0 \
                    and on_progress is not None:
                on_progress(max(0, min(value, total)), total, str(body.get("node", ""))[:64])
        elif kind == "execution_error":
            node = str(body.get("node_type") or body.get("node_id") or "a node")[:80]
            said = str(body.get("exception_message") or "").strip()[:400]
            state["error"] = (f"ComfyUI at {self.url} failed in {node}: "
                              f"{said or 'no message'}")
        elif kind == "execution_interrupted":
            state["interrupted"] = True

    def _check_alive(self, prompt_id: str, state: dict, on_status) -> None:
        """After a long silence: is the job still queued or running? (A cleared queue or a
        restarted server never says so on the socket.)"""
        state["heard"] = time.monotonic()
        where = self.queue_state(prompt_id)
        if where == "pending" and on_status:
            on_status("Waiting in the server's queue")
        if where == "absent":
            if self.history(prompt_id) is not None:
                state["done"] = True  # finished while a message went missing
            else:
                raise ServerGone(f"The ComfyUI server at {self.url} dropped the job (its "
                                 "queue was cleared, or it restarted); nothing was saved.")

    def _stop(self, prompt_id: str, socket) -> None:
        """Stop: out of the queue if it waits, interrupted if it runs — only when it is the
        running one (older servers' /interrupt stops whatever runs) — then wait briefly for
        the server to say so, so the next job does not start under a dying one."""
        try:
            state = self.queue_state(prompt_id)
            if state == "pending":
                self.delete(prompt_id)
                return
            if state != "running":
                return
            self._send("POST", "/interrupt", body={"prompt_id": prompt_id})
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                message = self._receive(socket)
                if isinstance(message, str) and prompt_id in message and (
                        "execution_interrupted" in message or '"node": null' in message):
                    return
        except ServerError:
            pass  # a server that is gone has stopped too


def _message_of(messages: Any) -> str:
    """The first error text in a history entry's ``status.messages``."""
    for entry in messages if isinstance(messages, list) else ():
        if isinstance(entry, list) and len(entry) == 2 and entry[0] == "execution_error" \
                and isinstance(entry[1], dict):
            said = entry[1].get("exception_message")
            if isinstance(said, str):
                return f": {said.strip()[:300]}"
    return ""


def _comfy_status(status: int, data: bytes, url: str, retry_after: str | None) -> ServerError:
    """A refused request, with ComfyUI's own reason (a workflow's node errors) when given."""
    detail = ""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        value = None
    if isinstance(value, dict):
        error = value.get("error")
        if isinstance(error, dict):
            detail = str(error.get("message", ""))[:200]
            extra = error.get("details")
            if isinstance(extra, str) and extra:
                detail += f" ({extra[:200]})"
        nodes = value.get("node_errors")
        if isinstance(nodes, dict):
            for node, info in list(nodes.items())[:3]:
                errors = info.get("errors") if isinstance(info, dict) else None
                for error in (errors if isinstance(errors, list) else [])[:2]:
                    if isinstance(error, dict):
                        said = error.get("details") or error.get("message")
                        detail += f"; node {str(node)[:20]}: {str(said)[:200]}"
    if not detail:
        detail = _error_detail(data)
    if status == 400:
        return ServerError(f"The ComfyUI server at {url} refused the workflow: "
                           f"{detail.strip('; ') or 'no reason given'}", status)
    return _status_error(status, detail.strip("; "), url, retry_after)


def _garbage(url: str, what: str) -> ServerError:
    return ServerError(f"The server at {url} answered something that is not a ComfyUI "
                       f"reply ({what}).")
