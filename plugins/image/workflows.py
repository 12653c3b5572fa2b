"""ComfyUI workflows in the API format (no Qt, no torch): the standard text-to-image one the
Image panel's settings map onto, and the user's own, with the inputs that take the panel's
prompt, negative prompt, seed, size, steps, guidance and checkpoint.

An own workflow is kept in the ``workflow`` parameter (so with the project's panel settings
and in every recipe) as JSON text::

    {"name": "portrait.json", "workflow": {<API format>},
     "inputs": {"prompt": ["6", "text"], "seed": ["3", "seed"], ...}}

A workflow file is untrusted input: its size, node count and shapes are checked, the UI
format (what ComfyUI's "Save" writes) is told apart from the API format ("Export (API)").
"""

from __future__ import annotations

import copy
import json
from typing import Any

from creative_studio.core.errors import BadInput

ROLES = ("prompt", "negative", "seed", "steps", "guidance", "width", "height", "checkpoint")
ROLE_LABELS = {"prompt": "Prompt", "negative": "Negative prompt", "seed": "Seed",
               "steps": "Steps", "guidance": "Guidance (cfg)", "width": "Width",
               "height": "Height", "checkpoint": "Checkpoint"}
MAX_NODES = 5000
MAX_WORKFLOW = 4_000_000  # characters of workflow JSON
STANDARD_NAME = "text-to-image (standard)"
# the panel's Scheduler → ComfyUI's sampler and noise schedule (PNDM has no ComfyUI sampler)
SAMPLERS = {"default": ("euler", "normal"), "DDIM": ("ddim", "ddim_uniform"),
            "Euler": ("euler", "normal"), "Euler a": ("euler_ancestral", "normal"),
            "DPM++ 2M": ("dpmpp_2m", "karras"), "UniPC": ("uni_pc", "normal"),
            "LMS": ("lms", "normal")}
_SAMPLER_NODES = ("KSampler", "KSamplerAdvanced")
_TEXT_NODES = ("CLIPTextEncode",)
_LATENT_NODES = ("EmptyLatentImage", "EmptySD3LatentImage")


def standard(checkpoint: str, prompt: str, negative: str, seed: int, steps: int,
             guidance: float, sampler: str, schedule: str, width: int, height: int) -> dict:
    """ComfyUI's default text-to-image graph (the node ids of its own default workflow)."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": width, "height": height, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": negative, "clip": ["4", 1]}},
        "3": {"class_type": "KSampler",
              "inputs": {"seed": seed, "steps": steps, "cfg": guidance,
                         "sampler_name": sampler, "scheduler": schedule, "denoise": 1.0,
                         "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                         "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage",
              "inputs": {"filename_prefix": "creative-studio", "images": ["8", 0]}},
    }


EDIT_NAMES = {"img2img": "image-to-image (standard)", "inpaint": "inpaint (standard)",
              "outpaint": "outpaint (standard)"}


def edit(checkpoint: str, image: str, task: str, strength: float, prompt: str, negative: str,
         seed: int, steps: int, guidance: float, sampler: str, schedule: str) -> dict:
    """ComfyUI's standard editing graphs on an uploaded picture (``image``; for an inpaint or
    outpaint its alpha is the mask, transparent = redraw, as LoadImage reads it): img2img
    encodes it (VAEEncode) and samples from it at ``strength``; inpaint/outpaint at full
    strength blank the masked pixels (VAEEncodeForInpaint), below it keep them as the start
    and confine the noise to the mask (SetLatentNoiseMask)."""
    graph = standard(checkpoint, prompt, negative, seed, steps, guidance, sampler, schedule,
                     8, 8)
    del graph["5"]
    graph["10"] = {"class_type": "LoadImage", "inputs": {"image": image}}
    if task == "img2img" or strength < 1:
        graph["11"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0],
                                                             "vae": ["4", 2]}}
        latent = ["11", 0]
        if task != "img2img":
            graph["12"] = {"class_type": "SetLatentNoiseMask",
                           "inputs": {"samples": ["11", 0], "mask": ["10", 1]}}
            latent = ["12", 0]
    else:
        graph["11"] = {"class_type": "VAEEncodeForInpaint",
                       "inputs": {"pixels": ["10", 0], "vae": ["4", 2], "mask": ["10", 1],
                                  "grow_mask_by": 6}}
        latent = ["11", 0]
    graph["3"]["inputs"].update(latent_image=latent, denoise=float(strength))
    graph["9"]["inputs"]["filename_prefix"] = "creative-studio-edit"
    return graph


def parse_workflow(text: str, name: str = "The workflow") -> dict:
    """An API-format workflow from a file's text, or BadInput saying what is wrong."""
    if len(text) > MAX_WORKFLOW:
        raise BadInput(f"{name} is too large ({len(text):,} characters; at most "
                       f"{MAX_WORKFLOW:,}).")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise BadInput(f"{name} is not JSON.") from None
    if isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data:
        raise BadInput(f"{name} is in ComfyUI's UI format: in ComfyUI, use Workflow → Export "
                       "(API) (or \"Save (API Format)\") and open that file.")
    check_workflow(data, name)
    return data


def check_workflow(data: Any, name: str = "The workflow") -> None:
    """BadInput unless ``data`` is a table of node id → {"class_type", "inputs"}."""
    if not isinstance(data, dict) or not data:
        raise BadInput(f"{name} is not a ComfyUI API-format workflow (a table of nodes).")
    if len(data) > MAX_NODES:
        raise BadInput(f"{name} has {len(data):,} nodes (at most {MAX_NODES:,}).")
    for node_id, node in data.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str) \
                or not isinstance(node.get("inputs"), dict) or len(str(node_id)) > 64:
            raise BadInput(f"{name}: node {str(node_id)[:64]} is not a node of the API format "
                           "(class_type and inputs).")


def guess_inputs(workflow: dict) -> dict[str, list[str]]:
    """Which node inputs take the panel's values, read from the graph: the sampler's seed,
    steps and cfg, the text encoders wired to its positive and negative, the empty latent's
    size, the checkpoint loader. The user may change each in the Workflow dialog."""
    found: dict[str, list[str]] = {}
    sampler_id = next((i for i, n in workflow.items() if n["class_type"] in _SAMPLER_NODES),
                      None)
    if sampler_id is None:  # any node with a seed input
        sampler_id = next((i for i, n in workflow.items()
                           if "seed" in n["inputs"] or "noise_seed" in n["inputs"]), None)
    if sampler_id is not None:
        inputs = workflow[sampler_id]["inputs"]
        for role, names in (("seed", ("seed", "noise_seed")), ("steps", ("steps",)),
                            ("guidance", ("cfg",))):
            name = next((n for n in names if _literal(workflow[sampler_id], n)), None)
            if name:
                found[role] = [sampler_id, name]
        for role, wire in (("prompt", "positive"), ("negative", "negative"),
                           ("width", "latent_image")):
            source = _source(workflow, inputs.get(wire))
            if source is None:
                continue
            node = workflow[source]
            if role == "width":
                if node["class_type"] in _LATENT_NODES or "width" in node["inputs"]:
                    for key in ("width", "height"):
                        if _literal(node, key):
                            found[key] = [source, key]
            elif _literal(node, "text"):
                found[role] = [source, "text"]
    if "prompt" not in found:  # no sampler wiring to follow: the first text encoder
        text_id = next((i for i, n in workflow.items() if n["class_type"] in _TEXT_NODES
                        and _literal(n, "text")), None)
        if text_id is not None:
            found["prompt"] = [text_id, "text"]
    loader = next((i for i, n in workflow.items() if _literal(n, "ckpt_name")), None)
    if loader is not None:
        found["checkpoint"] = [loader, "ckpt_name"]
    return found


def _is_value(value: Any) -> bool:
    """A literal input (not a wire from another node: [node id, output index])."""
    return not (isinstance(value, list) and len(value) == 2 and isinstance(value[1], int))


def _literal(node: dict, key: str) -> bool:
    """Whether a node has input ``key`` set to a value (that the panel may replace)."""
    return key in node["inputs"] and _is_value(node["inputs"][key])


def _source(workflow: dict, wire: Any) -> str | None:
    if isinstance(wire, list) and len(wire) == 2 and str(wire[0]) in workflow:
        return str(wire[0])
    return None


def document(name: str, workflow: dict, inputs: dict[str, list[str]]) -> str:
    """The ``workflow`` parameter's text for an own workflow."""
    return json.dumps({"name": name[:200], "workflow": workflow, "inputs": inputs},
                      ensure_ascii=False, separators=(",", ":"))


def load_document(text: str) -> tuple[str, dict, dict[str, list[str]]]:
    """(name, workflow, inputs) of a ``workflow`` parameter; BadInput when it is damaged.
    A bare API-format workflow (``--workflow-file`` on the command line) is taken with the
    inputs guessed from its graph."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise BadInput("The workflow kept with these settings is damaged (not JSON): open "
                       "it again with Workflow….") from None
    if not isinstance(data, dict):
        raise BadInput("The workflow kept with these settings is damaged: open it again.")
    if "workflow" not in data:
        graph = parse_workflow(text)
        return "workflow", graph, guess_inputs(graph)
    workflow = data.get("workflow")
    check_workflow(workflow, "The kept workflow")
    inputs = data.get("inputs") if isinstance(data.get("inputs"), dict) else {}
    clean = {}
    for role, target in inputs.items():
        if role in ROLES and isinstance(target, list) and len(target) == 2 \
                and all(isinstance(t, str) for t in target):
            clean[role] = target
    return str(data.get("name", "own workflow"))[:200], workflow, clean


def apply(workflow: dict, inputs: dict[str, list[str]], values: dict[str, Any]) -> dict:
    """A copy of ``workflow`` with ``values`` (by role) put into the mapped inputs; a role
    whose node or input is gone is refused with the node's name, a value of None is left
    as the workflow has it."""
    out = copy.deepcopy(workflow)
    for role, value in values.items():
        if value is None or role not in inputs:
            continue
        node_id, name = inputs[role]
        node = out.get(node_id)
        if node is None or name not in node["inputs"]:
            raise BadInput(f"The workflow has no input {name} on node {node_id} for the "
                           f"{ROLE_LABELS.get(role, role).lower()}: choose its inputs again "
                           "in Workflow….")
        node["inputs"][name] = value
    return out
