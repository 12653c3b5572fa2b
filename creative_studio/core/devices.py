"""Which device a job runs on. torch is imported only when it must be."""

from __future__ import annotations

import glob
import platform
import sys

CHOICES = ("auto", "cpu", "cuda", "mps")


def _might_have_accelerator() -> bool:
    """A cheap look, without importing torch, for a GPU that torch could use."""
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return True
    return bool(glob.glob("/dev/nvidia[0-9]*")) or bool(glob.glob("/dev/dxg"))


def available() -> list[str]:
    """Devices usable here, best first (imports torch)."""
    import torch

    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    found.append("cpu")
    return found


def resolve(preference: str, probe: bool = True) -> str:
    """Turn a preference ("auto", "cpu", "cuda", "mps") into the device a job uses.

    An explicit device that is not present falls back to the CPU, so that a project made
    on a GPU machine re-runs elsewhere; the device used is recorded with the result.
    ``probe=False``: never import torch to look (the studio's own process, whose models run
    in a model process); a possible accelerator then leaves the preference as it is.
    """
    preference = (preference or "auto").lower()
    if preference not in CHOICES:
        preference = "auto"
    if preference == "cpu":
        return "cpu"
    if "torch" not in sys.modules and not _might_have_accelerator():
        return "cpu"
    if not probe and "torch" not in sys.modules:
        return preference  # "auto", "cuda" or "mps": the process that runs the model decides
    found = available()
    if preference == "auto":
        return found[0]
    return preference if preference in found else "cpu"
