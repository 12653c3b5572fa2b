"""Reading the recipe back out of a PNG: the studio's own JSON, A1111's ``parameters`` text,
or ComfyUI's ``prompt`` graph. No Qt, no torch."""

from __future__ import annotations

import io
import json
import re

from creative_studio.core.errors import BadInput

A1111_KEYS = {"Steps": ("steps", int), "CFG scale": ("guidance", float), "Seed": ("seed", int),
              "Sampler": ("scheduler", str), "Model": ("model", str),
              "Model hash": ("model_hash", str)}
# A1111's own settings-line pattern: a key, then a JSON-quoted value or one up to the comma
A1111_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            unquoted = json.loads(value)
        except ValueError:
            return value
        return unquoted if isinstance(unquoted, str) else value
    return value


def parse_a1111(text: str) -> dict:
    """{"prompt", "negative", "steps", "guidance", "seed", "scheduler", "width", "height"}."""
    lines = text.strip().splitlines()
    if not lines:
        return {}
    settings_line = lines[-1] if re.search(r"(^|, )Steps: \d+", lines[-1]) else ""
    body = lines[:-1] if settings_line else lines
    prompt, negative, in_negative = [], [], False
    for line in body:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    recipe: dict = {"prompt": "\n".join(prompt).strip(), "negative": "\n".join(negative).strip()}
    for key, value in A1111_PARAM.findall(settings_line):
        key, value = key.strip(), _unquote(value.strip())
        if key in A1111_KEYS:
            name, cast = A1111_KEYS[key]
            try:
                recipe[name] = cast(value)
            except ValueError:
                pass
        elif key == "Size" and "x" in value:
            width, _, height = value.partition("x")
            if width.isdigit() and height.isdigit():
                recipe["width"], recipe["height"] = int(width), int(height)
    return recipe


def parse_comfyui(graph_text: str) -> dict:
    """Prompt and sampler settings from ComfyUI's API-format ``prompt`` graph."""
    graph = json.loads(graph_text)
    if not isinstance(graph, dict):
        return {}
    for node in graph.values():
        if not isinstance(node, dict) or "KSampler" not in str(node.get("class_type", "")):
            continue
        inputs = node.get("inputs", {})

        def text_of(link) -> str:
            if isinstance(link, list) and link and str(link[0]) in graph:
                return str(graph[str(link[0])].get("inputs", {}).get("text", ""))
            return ""

        recipe = {"prompt": text_of(inputs.get("positive")),
                  "negative": text_of(inputs.get("negative"))}
        for key, (name, cast) in {"seed": ("seed", int), "noise_seed": ("seed", int),
                                  "steps": ("steps", int), "cfg": ("guidance", float)}.items():
            if isinstance(inputs.get(key), int | float):
                recipe[name] = cast(inputs[key])
        return recipe
    return {}


def recipe_from_png(data: bytes, name: str = "The file") -> dict:
    """What a PNG says about how it was made, or BadInput when it says nothing."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        text = dict(getattr(image, "text", {}) or {})
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise BadInput(f"{name} is not a PNG the studio can read ({exc}).") from exc
    if "creative-studio" in text:
        try:
            studio = json.loads(text["creative-studio"])
        except ValueError:
            studio = None
        if isinstance(studio, dict) and "request" in studio:  # an exported item's recipe
            request = studio["request"]
            return {"prompt": request.get("prompt", ""), "seed": request.get("seed"),
                    **request.get("params", {}), "source": "Creative Studio"}
        if isinstance(studio, dict) and "prompt" in studio:
            return {"prompt": studio["prompt"], "seed": studio.get("seed"),
                    **studio.get("params", {}), "source": "Creative Studio"}
    if "parameters" in text:
        return {**parse_a1111(text["parameters"]), "source": "A1111"}
    if "prompt" in text:
        try:
            recipe = parse_comfyui(text["prompt"])
        except ValueError:
            recipe = {}
        if recipe:
            return {**recipe, "source": "ComfyUI"}
    raise BadInput(f"{name} carries no recipe (no Creative Studio, A1111 or ComfyUI text).")
