"""Face restoration after upscaling (no Qt; torch, spandrel and OpenCV imported lazily).

A user's face model file — GFPGAN (v1.3/1.4 "clean") or RestoreFormer, the face
architectures spandrel reads, loaded without unpickling code — runs on each face found in the
*source* picture, on the *upscaled* pixels:

1. **Find** (``detect``): OpenCV's Haar cascade for frontal faces; the eyes, when the eye
   cascade finds both, give the eye line's position, length and roll. Without them the face
   must be found by a second cascade too (one alone sees faces in flags), and the eye line
   is estimated from the face box.
2. **Align**: the square crop that puts the eyes where the FFHQ-aligned faces these models
   were trained on have them (eye distance 0.246 of the crop, eye line at 0.47 of its height),
   rotated upright, resized to the model's 512 px (``cv2.warpAffine``).
3. **Restore and paste back**: the model's face warped back and blended over the upscale
   through a feathered ellipse, times ``strength`` (0: the upscale as it was; 1: the model's
   face inside the ellipse). Pixels outside every face's crop are never touched.

CodeFormer is not here: spandrel keeps it in spandrel_extra_arches (non-commercial licence).
The result streams band by band (``FacePaster``): rows are held back only while a face that
covers them is not done yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from creative_studio.core.errors import BadInput, ModelError

EYE_SPAN = 0.246  # eye distance / crop side in the FFHQ 512 template (GFPGAN's alignment)
EYE_HEIGHT = 0.469  # eye line / crop side
SIDE = 512  # the face models' input and output size
MAX_FACES = 20  # a crowd is not restored face by face (minutes each on a CPU)
ARCHITECTURES = ("GFPGAN", "RestoreFormer")


@dataclass
class Face:
    """An eye line: its centre (x, y), the eye distance and the roll (radians), in the
    picture's pixels."""

    x: float
    y: float
    eyes: float
    roll: float

    def scaled(self, sx: float, sy: float) -> Face:
        return Face(self.x * sx, self.y * sy, self.eyes * (sx + sy) / 2, self.roll)

    def matrix(self):
        """The 2×3 affine matrix taking picture pixels to the aligned 512-px crop."""
        import numpy as np

        side = self.eyes / EYE_SPAN
        zoom = SIDE / side
        cos, sin = math.cos(-self.roll) * zoom, math.sin(-self.roll) * zoom
        # rotate about the eye centre, scale, then put the eye centre where the template has it
        return np.array([[cos, -sin, SIDE / 2 - (cos * self.x - sin * self.y)],
                         [sin, cos, EYE_HEIGHT * SIDE - (sin * self.x + cos * self.y)]])

    def bounds(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1): the box around the crop's rotated square, in picture pixels."""
        import cv2
        import numpy as np

        corners = np.array([[0, 0, 1], [SIDE, 0, 1], [0, SIDE, 1], [SIDE, SIDE, 1]]) @ \
            cv2.invertAffineTransform(self.matrix()).T
        (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    def rows(self, height: int) -> tuple[int, int]:
        """The rows the crop covers (its rotated square's bounding box), within the picture."""
        _x0, y0, _x1, y1 = self.bounds()
        return max(0, int(y0) - 1), min(height, int(y1) + 2)


def detect(image, limit: int = MAX_FACES) -> list[Face]:
    """Frontal faces in a PIL picture (looked for at ≤ 1024 px), largest first."""
    import cv2
    import numpy as np

    grey = np.asarray(image.convert("L"))
    shrink = min(1.0, 1024 / max(grey.shape))
    if shrink < 1.0:
        grey = cv2.resize(grey, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    folder = cv2.data.haarcascades
    faces = cv2.CascadeClassifier(folder + "haarcascade_frontalface_default.xml")
    second = cv2.CascadeClassifier(folder + "haarcascade_frontalface_alt2.xml")
    eyes = cv2.CascadeClassifier(folder + "haarcascade_eye.xml")
    if faces.empty() or second.empty() or eyes.empty():
        raise ModelError("OpenCV's face finder is missing (opencv-python-headless < 5 "
                         "ships it: tools/setup.sh installs it).")
    found = faces.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    confirming = None
    result = []
    for x, y, w, h in sorted(found, key=lambda f: -f[2] * f[3])[:limit]:
        top = grey[y:y + int(h * 0.6), x:x + w]  # the eyes are in the upper part
        pair = sorted(eyes.detectMultiScale(top, 1.1, 5, minSize=(max(4, w // 10),) * 2),
                      key=lambda e: -e[2] * e[3])[:2]
        centres = sorted((ex + ew / 2, ey + eh / 2) for ex, ey, ew, eh in pair)
        if len(centres) == 2 and 0.25 * w < centres[1][0] - centres[0][0] < 0.75 * w:
            (lx, ly), (rx, ry) = centres
            face = Face(float(x + (lx + rx) / 2), float(y + (ly + ry) / 2),
                        math.hypot(rx - lx, ry - ly), math.atan2(ry - ly, rx - lx))
        else:
            # no eyes found (a small face, glasses): kept only when a second cascade finds
            # it too (one cascade alone sees faces in flags and fabric), its eye line as a
            # frontal face box has it
            if confirming is None:
                confirming = second.detectMultiScale(grey, 1.1, 5, minSize=(24, 24))
            if not any(_overlap((x, y, w, h), other) > 0.5 for other in confirming):
                continue
            face = Face(float(x + w / 2), float(y + 0.37 * h), 0.46 * float(w), 0.0)
        result.append(face.scaled(1 / shrink, 1 / shrink))
    return result


def _overlap(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / float(aw * ah + bw * bh - w * h)


class FaceModel:
    """A face restoration model file, loaded once: ``restore(crop)`` takes and gives a
    (512, 512, 3) uint8 RGB array."""

    def __init__(self, path: Path, device: str = "cpu") -> None:
        import torch

        from creative_studio.compat.torchvision_shim import import_spandrel
        from creative_studio.core.provenance import weights_sha256

        from .models import _state_dict_from_file

        spandrel = import_spandrel()
        if not path.is_file():
            raise BadInput(f"The face model {path} is not there.")
        state = _state_dict_from_file(path)
        try:
            descriptor = spandrel.ModelLoader().load_from_state_dict(state)
        except Exception as exc:
            raise ModelError(f"{path.name} is not a model spandrel knows ({exc}).") from exc
        name = descriptor.architecture.name
        if name not in ARCHITECTURES:
            raise ModelError(f"{path.name} is a {name} model, not a face restoration model: "
                             f"choose a GFPGAN or RestoreFormer file.")
        descriptor.model.eval()
        descriptor.to(device)
        self.descriptor, self.device, self.path = descriptor, device, path
        self.name, self.architecture = path.name, name
        self.sha256 = weights_sha256(path)
        self._torch = torch

    def restore(self, crop):
        import numpy as np

        torch = self._torch
        x = torch.from_numpy(np.array(crop)).permute(2, 0, 1)[None].float() / 255
        x = x.to(self.device)
        with torch.inference_mode():
            if self.architecture == "GFPGAN":
                # spandrel calls it on [0, 1]; GFPGAN works in [-1, 1] (as in GFPGAN's own
                # inference), with its fixed noise: the same face every run
                out = self.descriptor.model(x * 2 - 1, randomize_noise=False)[0]
                out = (out + 1) / 2
            else:
                out = self.descriptor(x)
        out = out[0].float().clamp(0, 1).mul(255).round().to(torch.uint8)
        return out.permute(1, 2, 0).cpu().numpy()


def _ellipse_mask():
    """The blend of a restored face: 1 inside an ellipse around the face, fading to 0
    (feathered over ~10 % of the crop) well inside the crop's edge."""
    import numpy as np

    ys, xs = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) + 0.5
    # the face in the template: centred a little below the eye line, taller than wide
    distance = np.hypot((xs - SIDE * 0.5) / (SIDE * 0.36), (ys - SIDE * 0.55) / (SIDE * 0.43))
    return np.clip((1.0 - distance) / 0.12, 0.0, 1.0)


class FacePaster:
    """A band sink (``paster(y, rows)``) that restores the faces on the rows passing
    through to ``sink``: the rows from the top of the first face not yet done are held until
    its last row has come."""

    def __init__(self, faces: list[Face], model: FaceModel, strength: float, height: int,
                 sink, progress=None) -> None:
        # (first row, last row, face) of the faces not restored yet, the topmost first
        self.pending = sorted(((*f.rows(height), f) for f in faces), key=lambda p: p[0])
        self.model, self.strength, self.height, self.sink = model, strength, height, sink
        self.progress = progress
        self.held, self.top = None, 0
        self.mask = _ellipse_mask()
        self.done = 0

    def __call__(self, y: int, rows) -> None:
        import numpy as np

        if self.held is None:
            self.held, self.top = rows.copy(), y
        else:
            self.held = np.concatenate([self.held, rows])
        have = self.top + self.held.shape[0]
        for pending in list(self.pending):
            if pending[1] <= have or have >= self.height:
                self._paste(pending[2])
                self.pending.remove(pending)
        free = min([first for first, _last, _face in self.pending], default=have)
        if free > self.top:
            self.sink(self.top, self.held[:free - self.top])
            self.held = self.held[free - self.top:]
            self.top = free

    def _paste(self, face: Face) -> None:
        """Restore ``face`` in the held rows (all its rows are there)."""
        import cv2
        import numpy as np

        if self.progress is not None:
            self.progress.check()
            self.progress.say(f"Restoring face {self.done + 1}…")
        band = self.held
        bx0, by0, bx1, by1 = face.bounds()  # (the band starts at picture row self.top)
        x0, y0 = max(0, int(bx0) - 1), max(0, int(by0) - 1 - self.top)
        x1 = min(band.shape[1], int(bx1) + 2)
        y1 = min(band.shape[0], int(by1) + 2 - self.top)
        if x1 <= x0 or y1 <= y0:
            return
        local = face.matrix()
        local[:, 2] += local[:, 1] * self.top  # picture rows → rows of the band
        local[:, 2] += local[:, 0] * x0 + local[:, 1] * y0  # … → pixels of the region
        region = band[y0:y1, x0:x1]
        crop = cv2.warpAffine(region, local, (SIDE, SIDE), flags=cv2.INTER_AREA
                              if face.eyes / EYE_SPAN > SIDE else cv2.INTER_CUBIC,
                              borderMode=cv2.BORDER_REFLECT_101)
        restored = self.model.restore(crop)
        inverse = cv2.invertAffineTransform(local)
        size = (x1 - x0, y1 - y0)
        back = cv2.warpAffine(restored, inverse, size, flags=cv2.INTER_CUBIC,
                              borderMode=cv2.BORDER_REPLICATE)
        weight = cv2.warpAffine(self.mask, inverse, size, flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT)[..., None] * self.strength
        mixed = region * (1.0 - weight) + back * weight
        band[y0:y1, x0:x1] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
        self.done += 1

    def close(self) -> None:
        """Every face done and every row passed on (called after the last band)."""
        if self.held is not None and self.held.shape[0]:
            for _first, _last, face in self.pending:
                self._paste(face)
            self.pending = []
            self.sink(self.top, self.held)
            self.held = None
