"""The headless CLI, run as a user would run it (a subprocess)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "main.py", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env={**os.environ})


@pytest.mark.model
def test_generate_list_and_export(tmp_path, smollm_folder):
    project = tmp_path / "cli.csproj"
    args = ("generate", "text", "--project", str(project), "--prompt",
            "Write a haiku about snow.", "--seed", "99", "--max-tokens", "20")
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    second = cli(*args, "--quiet")
    assert second.returncode == 0, second.stderr
    assert first.stdout.strip() == second.stdout.strip() != ""
    assert "seed 99" in first.stderr and "item " in first.stderr
    listing = cli("list", "--project", str(project), "--json")
    items = json.loads(listing.stdout)
    assert len(items) == 2 and items[0]["request"]["seed"] == 99
    assert items[0]["model"]["sha256"] and items[0]["versions"]["torch"]
    out = tmp_path / "haiku.txt"
    exported = cli("export", "--project", str(project), "--item", items[0]["item"][:8],
                   "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert out.read_text() == first.stdout.strip("\n")
    recipe = json.loads((tmp_path / "haiku.recipe.json").read_text())
    assert recipe["request"]["prompt"] == "Write a haiku about snow."


def test_bad_input_gives_clear_errors(tmp_path):
    project = tmp_path / "p.csproj"
    empty = cli("generate", "text", "--project", str(project), "--prompt", "")
    assert empty.returncode == 2 and "Write an instruction" in empty.stderr
    assert "Traceback" not in empty.stderr
    hot = cli("generate", "text", "--project", str(project), "--prompt", "x",
              "--temperature", "9")
    assert hot.returncode == 2 and "Temperature must be between 0 and 2 (got 9" in hot.stderr
    typo = cli("generate", "music", "--project", str(project), "--key", "H")
    assert typo.returncode == 2 and "Key must be one of C, C♯/D♭" in typo.stderr
    unused = cli("generate", "music", "--project", str(project), "--voices", "3")
    assert unused.returncode == 2 and "The generate task does not use --voices" in \
        unused.stderr
    bad = tmp_path / "bad.csproj"
    bad.write_text("hello")
    result = cli("list", "--project", str(bad))
    assert result.returncode == 2 and "not a Creative Studio project" in result.stderr
    missing = cli("generate", "text", "--project", str(project), "--prompt", "x",
                  "--model", str(tmp_path / "no-model"), "--max-tokens", "2")
    assert missing.returncode == 1 and "Model not found" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_plugins_command():
    result = cli("plugins")
    assert result.returncode == 0 and "text" in result.stdout and "ok" in result.stdout


def test_help_is_built_from_the_declarations():
    top = cli("--help")
    assert top.returncode == 0 and "generate" in top.stdout
    listing = cli("generate", "--help")
    for plugin in ("text", "image", "music", "upscale"):
        assert plugin in listing.stdout
    image = cli("generate", "image", "--help")
    assert "--guidance" in image.stdout and "Range 0.0…30.0" in image.stdout
    assert "Choices: default, DDIM, Euler" in image.stdout
    music = cli("generate", "music", "--help")
    assert "--key" in music.stdout and "--tonic" in music.stdout and "--meter" in music.stdout
    assert "--strict-key" in music.stdout and "--no-strict-key" in music.stdout


@pytest.mark.model
def test_upscale_a_folder_from_the_command_line(tmp_path):
    if importlib.util.find_spec("spandrel") is None:
        pytest.skip("spandrel is not installed (tools/setup.sh installs it)")
    from PIL import Image

    folder = tmp_path / "pics"
    folder.mkdir()
    Image.new("RGB", (24, 16), "orange").save(folder / "a.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff junk")
    project, out = tmp_path / "up.csproj", tmp_path / "out"
    result = cli("generate", "upscale", str(folder), "--project", str(project),
                 "--model", "embedded:animevideov3-x2", "--out", str(out), "--format", "jpg",
                 "--quality", "80")
    assert result.returncode == 1  # one picture could not be read
    assert "broken.jpg" in result.stderr and "not an image" in result.stderr
    exported = Image.open(out / "a_x2_animevideov3-x2.jpg")  # named after the model too
    assert exported.size == (48, 32)
    assert b'"upscale"' in exported.getexif().get_ifd(0x8769)[0x9286]  # the recipe
    items = json.loads(cli("list", "--project", str(project), "--json").stdout)
    assert [i["request"]["task"] for i in items] == ["import", "upscale"]
    assert items[1]["parents"] == [items[0]["item"]]


@pytest.mark.model
def test_music_from_the_command_line(tmp_path):
    if importlib.util.find_spec("miditok") is None:
        pytest.skip("miditok is not installed")
    from creative_studio.io.midi import read_notes, recipe_of

    project = tmp_path / "tunes.csproj"
    made = cli("generate", "music", "--project", str(project), "--key", "D", "--mode",
               "dorian", "--meter", "6/8", "--bars", "4", "--seed", "3", "-n", "2",
               "--instrument", "40", "--out", str(tmp_path / "tune.mid"))
    assert made.returncode == 0, made.stderr
    assert "D dorian" in made.stdout
    first = (tmp_path / "tune_1.mid").read_bytes()
    assert read_notes(first).time_signature == (6, 8) and '"seed": 3' in recipe_of(first)
    assert (tmp_path / "tune_2.mid").exists()
    items = json.loads(cli("list", "--project", str(project), "--json").stdout)
    assert items[0]["request"]["params"]["program"] == 40  # every value is recorded
    assert items[0]["request"]["params"]["tonic"] == 2
    # a file given: the task that reads files (continue) is chosen
    cont = cli("generate", "music", str(tmp_path / "tune_1.mid"), "--project", str(project),
               "--keep-bars", "2", "--bars", "2", "--out", str(tmp_path / "more.wav"))
    assert cont.returncode == 0, cont.stderr
    assert (tmp_path / "more.wav").read_bytes()[:4] == b"RIFF"
    items = json.loads(cli("list", "--project", str(project), "--json").stdout)
    assert items[-1]["request"]["task"] == "continue"
    assert "tonic" not in items[-1]["request"]["params"]  # found from the MIDI
    bad = cli("generate", "music", "--project", str(project), "--task", "continue",
              str(tmp_path / "more.wav"))
    assert bad.returncode == 2 and "not a MIDI file" in bad.stderr
