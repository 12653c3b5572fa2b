"""Headless Creative Studio: the same jobs as the GUI, written into the same project file.

    creative-studio generate text --project my.csproj --prompt "A haiku about rain"
    creative-studio generate upscale --project my.csproj photo.jpg folder/ --out upscaled/
    creative-studio generate music --project my.csproj --key D --mode dorian --out tune.mid
    creative-studio list --project my.csproj
    creative-studio export --project my.csproj --item ID --out poem.txt
    creative-studio plugins
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .core.errors import StudioError
from .core.jobs import JobState, Request, random_seed, variations

COMMANDS = ("generate", "list", "export", "plugins")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="creative-studio",
                                     description="Creative Studio, headless.")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="run a generation job and save it in a project")
    gen_sub = gen.add_subparsers(dest="modality", required=True)
    text = gen_sub.add_parser("text", help="write text with a language model")
    text.add_argument("--project", required=True, help="project file (created if missing)")
    text.add_argument("--prompt", default="", help="instruction or prompt")
    text.add_argument("--task", choices=("generate", "continue", "rewrite"), default="generate")
    text.add_argument("--context-file", help="document text to continue (task continue) or "
                                             "to give as context")
    text.add_argument("--selection-file", help="text to rewrite (task rewrite)")
    text.add_argument("--model", default="", help="embedded:<id>, a folder, a .gguf, or a "
                                                  "Hugging Face id")
    text.add_argument("--system", default="")
    text.add_argument("--temperature", type=float, default=0.7)
    text.add_argument("--top-p", type=float, default=0.9)
    text.add_argument("--max-tokens", type=int, default=200)
    text.add_argument("--seed", type=int, help="default: a random seed (printed)")
    text.add_argument("-n", "--alternatives", type=int, default=1)
    text.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    text.add_argument("--quiet", action="store_true", help="do not stream tokens")
    up = gen_sub.add_parser("upscale", help="upscale pictures (files or folders)")
    up.add_argument("inputs", nargs="+", help="pictures or folders of pictures")
    up.add_argument("--project", required=True, help="project file (created if missing)")
    up.add_argument("--model", default="embedded:dat-light-x4",
                    help="embedded:<id> (see plugins/upscale/plugin.toml) or a .pth/.safetensors")
    up.add_argument("--size", default="model", help="model, x2, x3, x4 or long:<px>")
    up.add_argument("--tile", type=int, default=0, help="tile size in input px (0 = auto)")
    up.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    up.add_argument("--out", help="folder to export the results to (with their recipe)")
    up.add_argument("--format", default="png", choices=("png", "jpg", "webp", "tif"))
    up.add_argument("--quality", type=int, default=92, help="JPEG/WebP quality")
    up.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    music = gen_sub.add_parser("music", help="write MIDI ideas, or continue a MIDI file")
    music.add_argument("--project", required=True, help="project file (created if missing)")
    music.add_argument("--continue-midi", help="a .mid to continue (its first bars are kept)")
    music.add_argument("--keep-bars", type=int, default=4)
    music.add_argument("--key", default="C", help="tonic: C, C#, Db, D … B (or auto when "
                                                   "continuing)")
    music.add_argument("--mode", default="major",
                       choices=("major", "minor", "dorian", "mixolydian", "auto"))
    music.add_argument("--meter", default="4/4", help="4/4, 3/4, 2/4, 6/8, 9/8 or 2/2")
    music.add_argument("--tempo", type=float, help="BPM (default 100, or the MIDI's)")
    music.add_argument("--bars", type=int, default=8)
    music.add_argument("--style", default="folk", choices=("folk", "chorale"))
    music.add_argument("--temperature", type=float, default=1.0)
    music.add_argument("--top-p", type=float, default=0.95)
    music.add_argument("--seed", type=int, help="default: a random seed (printed)")
    music.add_argument("-n", "--variations", type=int, default=1)
    music.add_argument("--instrument", type=int, default=0, help="General MIDI program 0-127")
    music.add_argument("--strict-key", action="store_true", help="only notes of the scale")
    music.add_argument("--model", default="", help="embedded:music-gpt2 or a model folder")
    music.add_argument("--out", help="write the result(s) here: .mid or .wav")
    listing = sub.add_parser("list", help="list a project's items")
    listing.add_argument("--project", required=True)
    listing.add_argument("--json", action="store_true")
    export = sub.add_parser("export", help="write an item's output to a file")
    export.add_argument("--project", required=True)
    export.add_argument("--item", required=True, help="item id (a unique prefix is enough)")
    export.add_argument("--out", required=True)
    export.add_argument("--quality", type=int, default=92, help="JPEG/WebP quality")
    sub.add_parser("plugins", help="list plugins and their load errors")
    return parser


def _open_or_create(path: str):
    from .core.project import ProjectStore

    target = Path(path)
    if target.exists():
        return ProjectStore.open(target)
    return ProjectStore.create(target)


def _read(path: str | None) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StudioError(f"Cannot read {path}: {exc}") from exc


def _wait(runner, job) -> None:
    """Wait for a job; Ctrl+C cancels everything queued and still waits for this one."""
    try:
        runner.wait(job)
    except KeyboardInterrupt:
        runner.cancel_all()
        runner.wait(job)


def _generate_text(args) -> int:
    from .plugins import PluginRegistry
    from .workers.runner import JobRunner

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    store = _open_or_create(args.project)
    registry = PluginRegistry.discover()
    streamed = {"text": ""}

    def listener(event, job, data) -> None:
        if event == "progress" and not args.quiet and job.id == jobs[0].id:
            preview = data[2]
            if isinstance(preview, str) and preview.startswith(streamed["text"]):
                sys.stdout.write(preview[len(streamed["text"]):])
                sys.stdout.flush()
                streamed["text"] = preview

    runner = JobRunner(registry, listener, device_preference=args.device)
    seed = args.seed if args.seed is not None else random_seed()
    params = {"temperature": args.temperature, "top_p": args.top_p,
              "max_tokens": args.max_tokens, "system": args.system,
              "context": _read(args.context_file), "selection": _read(args.selection_file)}
    jobs = []
    try:
        base = Request("text", args.task, prompt=args.prompt, params=params, seed=seed,
                       model=args.model, device=args.device)
        for request in variations(base, args.alternatives):
            jobs.append(runner.submit(request, store=store, label=args.prompt[:40]))
        failed = 0
        for job in jobs:
            _wait(runner, job)
            if job is jobs[0] and not args.quiet and streamed["text"]:
                sys.stdout.write("\n")
            if job.state is JobState.DONE and job.error == "":
                if args.quiet or job is not jobs[0]:
                    print(job.result.assets[0].data.decode("utf-8"))
                meta = job.result.metadata
                print(f"[item {job.item_id} · seed {job.request.seed} · {meta.get('tokens')} "
                      f"tokens · {meta.get('tokens_per_s')} tok/s · {job.result.device}]",
                      file=sys.stderr)
            else:
                failed += 1
                print(f"error: {job.error or job.state.value}", file=sys.stderr)
    finally:
        runner.shutdown(cancel=True)
        store.close()
    return 1 if failed else 0


def _generate_upscale(args) -> int:
    from .io.export import export_item
    from .io.imports import image_files, import_image
    from .plugins import PluginRegistry
    from .workers.runner import JobRunner

    store = _open_or_create(args.project)
    out = Path(args.out) if args.out else None
    failed = 0

    def listener(event, job, data) -> None:  # called on the worker thread
        if event == "progress" and sys.stderr.isatty():
            sys.stderr.write(f"\r  {job.label}: {data[0] * 100:3.0f}%")
            sys.stderr.flush()

    runner = JobRunner(PluginRegistry.discover(), listener, device_preference=args.device)
    try:
        jobs = []
        for path in image_files([Path(p) for p in args.inputs]):
            try:
                source, _image = import_image(store, "upscale", path)
            except (StudioError, OSError) as exc:
                from .core.errors import describe

                print(f"skipped {path}: {describe(exc)}", file=sys.stderr)
                failed += 1
                continue
            request = Request("upscale", "upscale", parents=[source], model=args.model,
                              device=args.device,
                              params={"size": args.size, "tile": args.tile,
                                      "precision": args.precision})
            jobs.append((path, runner.submit(request, store=store, label=path.name)))
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        for path, job in jobs:
            _wait(runner, job)
            if sys.stderr.isatty():
                sys.stderr.write("\r")
            if job.state is not JobState.DONE:
                failed += 1
                print(f"{path.name}: error: {job.error or job.state.value}", file=sys.stderr)
                continue
            line = f"{path.name}: {job.result.title} [item {job.item_id}]"
            if out is not None:
                item = store.item(job.item_id)
                target = out / f"{path.stem}_x{job.result.metadata['scale']}.{args.format}"
                export_item(store, item, target, quality=args.quality)
                line += f" → {target}"
            print(line)
    finally:
        runner.shutdown(cancel=True)
        store.close()
    return 1 if failed else 0


TONIC_NAMES = {"C": 0, "C#": 1, "DB": 1, "D": 2, "D#": 3, "EB": 3, "E": 4, "F": 5, "F#": 6,
               "GB": 6, "G": 7, "G#": 8, "AB": 8, "A": 9, "A#": 10, "BB": 10, "B": 11}


def _generate_music(args) -> int:
    from .io.export import export_item
    from .io.imports import import_midi
    from .plugins import PluginRegistry
    from .workers.runner import JobRunner

    key = args.key.strip().upper()
    if key != "AUTO" and key not in TONIC_NAMES:
        raise StudioError(f"Unknown key '{args.key}': use C, C#, Db, D … B.")
    store = _open_or_create(args.project)
    runner = JobRunner(PluginRegistry.discover())
    failed = 0
    try:
        parents, task = [], "generate"
        params = {"bars": args.bars, "style": args.style, "temperature": args.temperature,
                  "top_p": args.top_p, "program": args.instrument,
                  "strict_key": args.strict_key, "mode": args.mode,
                  "tonic": "auto" if key == "AUTO" else TONIC_NAMES[key]}
        if args.tempo:
            params["tempo"] = args.tempo
        if args.continue_midi:
            prompt_id, _content = import_midi(store, "music", Path(args.continue_midi))
            parents, task = [prompt_id], "continue"
            params["keep_bars"] = args.keep_bars
            if args.key == "C" and args.mode == "major":  # not given: find it
                params["tonic"] = params["mode"] = "auto"
        else:
            params["time_signature"] = args.meter
            params.setdefault("tempo", 100.0)
        seed = args.seed if args.seed is not None else random_seed()
        count = max(1, args.variations)
        base = Request("music", task, params=params, seed=seed, parents=parents,
                       model=args.model)
        jobs = [runner.submit(request, store=store, label=f"music {index + 1}/{count}")
                for index, request in enumerate(variations(base, count))]
        for index, job in enumerate(jobs):
            _wait(runner, job)
            if job.state is not JobState.DONE:
                failed += 1
                print(f"error: {job.error or job.state.value}", file=sys.stderr)
                continue
            meta = job.result.metadata
            line = (f"{job.result.title}: {meta['notes']} notes, {meta['in_key'] * 100:.0f}% "
                    f"in key [item {job.item_id} · seed {job.request.seed}]")
            if args.out:
                out = Path(args.out)
                if count > 1:
                    out = out.with_name(f"{out.stem}_{index + 1}{out.suffix}")
                export_item(store, store.item(job.item_id), out)
                line += f" → {out}"
            print(line)
    finally:
        runner.shutdown(cancel=True)
        store.close()
    return 1 if failed else 0


def _list(args) -> int:
    from .core.project import ProjectStore

    store = ProjectStore.open(args.project)
    try:
        items = store.items()
        if args.json:
            print(json.dumps([item.recipe() for item in items], indent=2))
        else:
            for item in items:
                print(f"{item.id}  {item.plugin:<7} seed={item.request.seed:<10} "
                      f"{item.title or item.request.prompt[:60]}")
            print(f"{len(items)} item(s)", file=sys.stderr)
    finally:
        store.close()
    return 0


def _export(args) -> int:
    from .core.project import ProjectStore
    from .io.export import export_item

    store = ProjectStore.open(args.project)
    try:
        matches = [item for item in store.items() if item.id.startswith(args.item)]
        if len(matches) != 1:
            raise StudioError(f"No single item matches '{args.item}' ({len(matches)} found).")
        for path in export_item(store, matches[0], Path(args.out), quality=args.quality):
            print(path)
    finally:
        store.close()
    return 0


def _plugins(_args) -> int:
    from .plugins import PluginRegistry

    registry = PluginRegistry.discover()
    for record in registry.records:
        name = record.manifest.name if record.manifest else record.origin
        print(f"{record.id:<10} {name:<10} {'ERROR: ' + record.error if record.error else 'ok'}")
    return 1 if registry.errors else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"list": _list, "export": _export, "plugins": _plugins}.get(args.command)
    try:
        if args.command == "generate":
            return {"text": _generate_text, "upscale": _generate_upscale,
                    "music": _generate_music}[args.modality](args)
        return handler(args)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        from .core.errors import describe

        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
