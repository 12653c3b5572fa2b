"""Outputs that other tools read right: every export is read back by a reader nobody here
wrote (sd-parsers, exiftool, music21, mido, soundfile, soxi, the sqlite3 shell), through the
studio's real export path, and must agree with the recipe stored in the project."""

from __future__ import annotations

import io
import json
import shutil
import subprocess

import pytest

from creative_studio.core.jobs import JobState, Request
from creative_studio.core.project import ProjectStore
from creative_studio.io.export import export_item
from creative_studio.plugins import PluginRegistry
from creative_studio.workers.runner import JobRunner

pytestmark = pytest.mark.model


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (tools/setup.sh test installs it)")
    return path


@pytest.fixture
def studio(tmp_path):
    """Run real jobs into a project: ``make(request) -> item``."""
    store = ProjectStore.create(tmp_path / "readers.csproj")
    runner = JobRunner(PluginRegistry.discover(entry_points=False))

    def make(request: Request):
        job = runner.submit(request, store=store)
        assert runner.wait(job, timeout=300), "the job did not finish"
        assert job.state is JobState.DONE, job.error
        return store.item(job.item_id)

    yield store, make
    runner.shutdown()
    store.close()


def test_image_png_is_read_by_sd_parsers(studio, tmp_path):
    sd_parsers = pytest.importorskip("sd_parsers")
    store, make = studio
    item = make(Request("image", "generate", "red heart, shiny", seed=12,
                        params={"steps": 6, "guidance": 4.5, "negative": "blurry: no",
                                "scheduler": "Euler a"}))
    (png,) = export_item(store, item, tmp_path / "heart.png")
    info = sd_parsers.ParserManager().parse(str(png))
    assert info.generator is sd_parsers.data.Generators.AUTOMATIC1111
    assert info.full_prompt == "red heart, shiny"
    assert info.full_negative_prompt == "blurry: no"
    (sampler,) = info.samplers
    assert sampler.name == "Euler a"
    assert sampler.parameters == {"cfg_scale": "4.5", "seed": "12", "steps": "6"}
    assert info.metadata["Size"] == f"{item.metadata['width']}x{item.metadata['height']}"
    (model,) = info.models
    assert model.name == "emoji-unet" and model.hash == item.model["sha256"][:10]
    # the studio's own recipe rides beside it, and recalls the whole request
    from plugins.image.recipes import recipe_from_png

    recalled = recipe_from_png(png.read_bytes())
    assert recalled["source"] == "Creative Studio" and recalled["negative"] == "blurry: no"


def test_a1111_quoting_round_trips():
    """A value with a comma or colon is JSON-quoted as A1111 quotes it, and read back whole."""
    from plugins.image.generator import a1111_parameters
    from plugins.image.recipes import parse_a1111

    text = a1111_parameters("a, b", "", 5, "DPM++ 2M", 7.0, 3, 64, 64, "my: model, v2",
                            "0123456789abcdef")
    assert text.splitlines()[-1] == ('Steps: 5, Sampler: DPM++ 2M, CFG scale: 7, Seed: 3, '
                                     'Size: 64x64, Model hash: 0123456789, '
                                     'Model: "my: model, v2"')
    assert parse_a1111(text)["model"] == "my: model, v2"


def _jpeg_with_icc_and_exif() -> bytes:
    from PIL import Image, ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif.get_ifd(0x8769)[0xA002] = 40
    exif.get_ifd(0x8769)[0xA003] = 30
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (20, 160, 90)).save(buffer, "JPEG", exif=exif.tobytes(),
                                                    icc_profile=icc, quality=95)
    return buffer.getvalue()


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_upscale_exports_are_read_by_exiftool(studio, tmp_path, suffix):
    exiftool = need("exiftool")
    from creative_studio.io.imports import import_image

    store, make = studio
    source = tmp_path / "photo.jpg"
    source.write_bytes(_jpeg_with_icc_and_exif())
    parent, _ = import_image(store, "upscale", source)
    item = make(Request("upscale", "upscale", parents=[parent],
                        model="embedded:animevideov3-x2"))
    (out,) = export_item(store, item, tmp_path / f"photo_x2{suffix}")
    tags = json.loads(subprocess.run([exiftool, "-j", "-G", "-a", str(out)],
                                     capture_output=True, text=True, check=True).stdout)[0]
    assert tags["Composite:ImageSize"] == "80x60"
    assert tags["ICC_Profile:ProfileDescription"]  # the colour profile survived
    assert tags["EXIF:Make"] == "TestCam"
    assert tags["EXIF:ExifImageWidth"] == 80 and tags["EXIF:ExifImageHeight"] == 60
    if suffix == ".png":
        recipe = tags["PNG:Creative-studio"]
    else:
        recipe = tags["EXIF:UserComment"]
    assert json.loads(recipe)["item"] == item.id
    assert json.loads(recipe)["request"]["model"] == "embedded:animevideov3-x2"


@pytest.fixture(scope="module")
def music_items(tmp_path_factory):
    """8-bar ideas in three meters, generated and exported through the studio."""
    folder = tmp_path_factory.mktemp("music")
    store = ProjectStore.create(folder / "m.csproj")
    runner = JobRunner(PluginRegistry.discover(entry_points=False))
    made = {}
    for meter, key, mode, program in (("3/4", 2, "major", 40), ("6/8", 9, "minor", 73),
                                      ("4/4", 2, "dorian", 0)):
        job = runner.submit(Request("music", "generate", seed=5, params={
            "bars": 8, "time_signature": meter, "tonic": key, "mode": mode, "tempo": 100,
            "program": program}), store=store)
        assert runner.wait(job, timeout=300) and job.state is JobState.DONE, job.error
        item = store.item(job.item_id)
        (mid,) = export_item(store, item, folder / f"idea-{meter.replace('/', '-')}.mid")
        made[meter] = (item, mid)
    runner.shutdown()
    yield store, made
    store.close()


@pytest.mark.parametrize("meter", ["3/4", "6/8", "4/4"])
def test_midi_is_read_by_music21_and_mido(music_items, meter):
    music21 = pytest.importorskip("music21")
    import mido

    _store, made = music_items
    item, path = made[meter]
    score = music21.converter.parse(str(path))
    part = score.parts[0]
    measures = part.getElementsByClass("Measure")
    assert len(measures) == 8  # 8 bars are 8 bars in every meter
    numerator, denominator = (int(x) for x in meter.split("/"))
    signature = part.recurse().getElementsByClass("TimeSignature")[0]
    assert (signature.numerator, signature.denominator) == (numerator, denominator)
    expected_sharps = {"3/4": 2, "6/8": 0, "4/4": 0}[meter]  # D major; A minor; D dorian = C
    assert part.recurse().getElementsByClass("KeySignature")[0].sharps == expected_sharps
    tempo = score.recurse().getElementsByClass("MetronomeMark")[0]
    assert tempo.number == pytest.approx(100)
    programs = {i.midiProgram for i in part.recurse().getElementsByClass("Instrument")}
    assert programs - {None} == {item.request.params["program"]}
    midi = mido.MidiFile(str(path))
    assert midi.type == 1
    names = [m.name for track in midi.tracks for m in track if m.type == "track_name"]
    assert len(names) == 2 and all(names)
    bar_ticks = midi.ticks_per_beat * 4 * numerator // denominator
    for track in midi.tracks:  # both tracks end on the bar line after bar 8
        assert sum(m.time for m in track) == 8 * bar_ticks
        assert track[-1].type == "end_of_track"
    texts = [m.text for m in midi.tracks[0] if m.type == "text"]
    recipe = json.loads(texts[0].split(": ", 1)[1])
    assert recipe["item"] == item.id and recipe["request"]["params"]["time_signature"] == meter


def test_wav_is_read_alike_by_soundfile_and_soxi(music_items, tmp_path):
    soxi = need("soxi")
    import soundfile

    from creative_studio.io.midi import RELEASE, length_seconds

    store, made = music_items
    item, mid = made["3/4"]
    wav, sidecar = export_item(store, item, tmp_path / "idea.wav")
    info = soundfile.info(str(wav))

    def ask(flag: str) -> str:
        return subprocess.run([soxi, flag, str(wav)], capture_output=True, text=True,
                              check=True).stdout.strip()

    assert int(ask("-r")) == info.samplerate == 44100
    assert int(ask("-c")) == info.channels == 1
    assert int(ask("-s")) == info.frames
    # as long as the MIDI (8 bars of 3/4 at 100 BPM = 14.4 s) plus the release tail
    assert length_seconds(mid.read_bytes()) == pytest.approx(14.4)
    assert info.frames == round((14.4 + RELEASE) * 44100)
    assert json.loads(sidecar.read_text())["item"] == item.id


def test_text_exports_are_utf8_with_unix_line_endings(tmp_path):
    from creative_studio.core.jobs import Asset, ModelIdentity, Result

    store = ProjectStore.create(tmp_path / "t.csproj")
    text = "Première ligne — naïve\nSecond line ✓\n"
    item_id = store.add_item(Request("text", "generate", "p"),
                             Result([Asset("text", "text/plain; charset=utf-8",
                                           text.encode("utf-8"))], ModelIdentity("m", "r"),
                                    "cpu"))
    for suffix in (".txt", ".md"):
        out, sidecar = export_item(store, store.item(item_id), tmp_path / f"doc{suffix}")
        data = out.read_bytes()
        assert data.decode("utf-8") == text and b"\r\n" not in data
        assert json.loads(sidecar.read_text(encoding="utf-8"))["item"] == item_id
    store.close()


def test_the_project_is_readable_by_the_sqlite3_shell(music_items, tmp_path):
    sqlite3 = need("sqlite3")
    store, made = music_items
    copy = tmp_path / "copy.csproj"
    shutil.copy(store.path, copy)
    check = subprocess.run([sqlite3, "-readonly", str(copy), "PRAGMA integrity_check;"],
                           capture_output=True, text=True, check=True)
    assert check.stdout.strip() == "ok"
    listed = subprocess.run([sqlite3, "-readonly", "-json", str(copy),
                             "SELECT id, plugin, title FROM items ORDER BY created;"],
                            capture_output=True, text=True, check=True)
    rows = json.loads(listed.stdout)
    assert {row["id"] for row in rows} == {item.id for item, _ in made.values()}
    # the bytes of an output come out with the shell alone (docs/project-format.md)
    item, mid = made["4/4"]
    out = tmp_path / "out.mid"
    subprocess.run([sqlite3, "-readonly", str(copy),
                    f"SELECT writefile('{out}', data) FROM assets WHERE item_id = '{item.id}';"],
                   capture_output=True, check=True)
    assert out.read_bytes() == store.asset_bytes(item.assets[0].id)
