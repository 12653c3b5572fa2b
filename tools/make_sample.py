"""Make the welcome page's sample project: one item from each panel, made by the embedded
models through the CLI (so it is what a user gets), kept in resources/sample/.

    .venv/bin/python tools/make_sample.py [resources/sample/sample.csproj]

The studio never writes to it: Help → Welcome → Open the sample project opens a copy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str) -> None:
    print("+ creative-studio", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "creative_studio.cli", *args], check=True, cwd=ROOT,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"})


def main() -> None:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else
                  ROOT / "resources" / "sample" / "sample.csproj")
    target.unlink(missing_ok=True)
    project = str(target)
    cli("generate", "text", "--project", project, "--seed", "7", "--max-tokens", "120",
        "--prompt", "Write the opening paragraph of a story about a lighthouse keeper "
                    "who finds a letter in a bottle.")
    cli("generate", "music", "--project", project, "--seed", "11", "--bars", "8")
    with tempfile.TemporaryDirectory() as tmp:
        picture = Path(tmp) / "red apple.png"
        cli("generate", "image", "--project", project, "--seed", "0", "--prompt", "red apple",
            "--out", str(picture))
        cli("generate", "upscale", "--project", project, "--model", "embedded:dat-light-x4",
            str(picture))
    cli("list", "--project", project)


if __name__ == "__main__":
    main()
