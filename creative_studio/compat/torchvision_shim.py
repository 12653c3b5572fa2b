"""Let spandrel import without torchvision.

spandrel imports ``torchvision.transforms.functional`` at import time, but only two of its
architectures use it (LaMa's ``rotate``, RestoreFormer's ``normalize``) — none of the
super-resolution models the studio uses. PyPI's torchvision wheels do not load beside the
CPU build of torch 2.13 ("operator torchvision::nms does not exist"), so when the real
torchvision cannot be imported, ``install()`` registers a minimal stand-in module that
provides those three names: ``normalize`` is implemented with torch, ``rotate`` raises a clear
error, ``InterpolationMode`` is the same enum. A working torchvision is always preferred.
"""

from __future__ import annotations

import enum
import sys
import types

SHIM_VERSION = "0.0+creative-studio-shim"


class InterpolationMode(enum.Enum):
    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


def normalize(tensor, mean, std, inplace: bool = False):
    import torch

    mean = torch.as_tensor(mean, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
    std = torch.as_tensor(std, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
    if inplace:
        return tensor.sub_(mean).div_(std)
    return (tensor - mean) / std


def rotate(*args, **kwargs):
    raise NotImplementedError("This model needs torchvision (rotate), which is not available "
                              "beside this build of torch.")


def import_spandrel():
    """Import spandrel, with the stand-in present only while spandrel imports.

    spandrel binds the names it needs at import time, so the stand-in is removed from
    ``sys.modules`` afterwards: other libraries (transformers probes
    ``importlib.util.find_spec("torchvision")``) keep seeing no torchvision at all.
    """
    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    shimmed = install()
    try:
        import spandrel
    finally:
        if shimmed:
            uninstall()
    return spandrel


def uninstall() -> None:
    """Remove the stand-in (never a real torchvision) from ``sys.modules``."""
    root = sys.modules.get("torchvision")
    if root is not None and getattr(root, "__version__", "") == SHIM_VERSION:
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]


def install() -> bool:
    """Make ``import torchvision.transforms.functional`` work. Returns True if shimmed."""
    existing = sys.modules.get("torchvision")
    if existing is not None:
        return getattr(existing, "__version__", "") == SHIM_VERSION
    try:
        import torchvision.transforms.functional  # noqa: F401
        return False
    except Exception:  # missing, or a wheel built for another torch
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
    root = types.ModuleType("torchvision")
    root.__version__ = SHIM_VERSION
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode = InterpolationMode
    functional.normalize = normalize
    functional.rotate = rotate
    transforms.functional = functional
    transforms.InterpolationMode = InterpolationMode
    root.transforms = transforms
    sys.modules.update({"torchvision": root, "torchvision.transforms": transforms,
                        "torchvision.transforms.functional": functional})
    return True
