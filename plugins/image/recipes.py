"""Reading the recipe back out of a PNG: the studio's own JSON, A1111's ``parameters`` text,
or ComfyUI's ``prompt`` graph. No Qt, no torch."""

from __future__ import annotations

import json
import math
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
        inputs = node.get("inputs")
        if not isinstance(inputs, dict):
            continue

        def text_of(link) -> str:
            if isinstance(link, list) and link and str(link[0]) in graph:
                node = graph[str(link[0])]
                inputs = node.get("inputs") if isinstance(node, dict) else None
                if isinstance(inputs, dict) and isinstance(inputs.get("text"), str):
                    return inputs["text"]
            return ""

        recipe = {"prompt": text_of(inputs.get("positive")),
                  "negative": text_of(inputs.get("negative"))}
        for key, (name, cast) in {"seed": ("seed", int), "noise_seed": ("seed", int),
                                  "steps": ("steps", int), "cfg": ("guidance", float)}.items():
            value = inputs.get(key)
            # json reads Infinity and NaN: int() of them raises, and they are no setting
            if isinstance(value, int | float) and not isinstance(value, bool) \
                    and math.isfinite(value):
                recipe[name] = cast(value)
        return recipe
    return {}


# what a recall may fill, with the type each must have; anything else in a file is dropped
FIELDS = {"prompt": str, "negative": str, "steps": int, "guidance": float, "seed": int,
          "scheduler": str, "width": int, "height": int, "model": str, "model_hash": str}
MAX_TEXT = 20_000  # characters of a prompt taken from a file


def clean(recipe: dict) -> dict:
    """Only the known fields, each of its type and in sane bounds (a hostile PNG's recipe
    can hold anything)."""
    out = {}
    for key, kind in FIELDS.items():
        value = recipe.get(key)
        if kind is str and isinstance(value, str):
            out[key] = value[:MAX_TEXT]
        elif kind is int and isinstance(value, int) and not isinstance(value, bool) \
                and 0 <= value < 2**31:
            out[key] = value
        elif kind is float and isinstance(value, int | float) and not isinstance(value, bool) \
                and math.isfinite(value) and abs(value) < 1e6:
            out[key] = float(value)
    if isinstance(recipe.get("source"), str):
        out["source"] = recipe["source"]
    return out


def _studio(text: str) -> dict:
    try:
        studio = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(studio, dict):
        return {}
    if isinstance(studio.get("request"), dict):  # an exported item's recipe
        studio = studio["request"]
    params = studio.get("params")
    return {**(params if isinstance(params, dict) else {}), "prompt": studio.get("prompt"),
            "seed": studio.get("seed")}


def recipe_from_png(data: bytes, name: str = "The file") -> dict:
    """What a PNG says about how it was made, or BadInput when it says nothing. Only the
    text chunks are read (no pixel is decoded), bounded in size."""
    from creative_studio.io.images import png_text

    text = png_text(data, name)
    if "creative-studio" in text:
        recipe = clean(_studio(text["creative-studio"]))
        if recipe.get("prompt") is not None or "seed" in recipe:
            return {**recipe, "source": "Creative Studio"}
    if "parameters" in text:
        return {**clean(parse_a1111(text["parameters"])), "source": "A1111"}
    if "prompt" in text:
        try:
            recipe = clean(parse_comfyui(text["prompt"]))
        except (ValueError, RecursionError):
            recipe = {}
        if recipe:
            return {**recipe, "source": "ComfyUI"}
    raise BadInput(f"{name} carries no recipe (no Creative Studio, A1111 or ComfyUI text).")
