"""Declared parameters (core/params.py): typing, ranges, defaults per task, choices."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creative_studio.core.errors import BadInput
from creative_studio.core.params import Param, ParamError, ParamSet
from creative_studio.plugins import PluginRegistry
from tests.helpers import Outcomes, examples


def declared() -> ParamSet:
    """The declarations, read in each test (so that mutation testing sees them read)."""
    return ParamSet.from_list([
        {"name": "steps", "type": "int", "default": 25, "min": 1, "max": 200},
        {"name": "guidance", "type": "float", "default": 3.0, "min": 0.0, "max": 30.0},
        {"name": "strict", "type": "bool", "default": False},
        {"name": "tonic", "type": "choice", "default": 0, "choices": [0, 1, 2, "auto"],
         "labels": ["C", "C♯/D♭", "D", "auto"], "aliases": {"C#": 1, "Db": 1},
         "no_default_for": ["continue"]},
        {"name": "keep", "type": "int", "default": 4, "min": 1, "max": 32, "tasks": ["continue"]},
        {"name": "note", "type": "text", "default": "", "max_length": 10},
    ])


def test_defaults_fill_only_the_params_of_the_task():
    assert declared().resolve("generate", {}) == {"steps": 25, "guidance": 3.0, "strict": False,
                                                "tonic": 0, "note": ""}
    # continue: tonic left to the generator (found from the MIDI), keep_bars filled in
    assert declared().resolve("continue", {}) == {"steps": 25, "guidance": 3.0, "strict": False,
                                                "keep": 4, "note": ""}


def test_values_are_typed_and_framework_keys_pass():
    out = declared().resolve("generate", {"steps": "30", "guidance": 7, "strict": "yes",
                                        "tonic": "C#", "group": "g1", "alternative": 2})
    assert out["steps"] == 30 and isinstance(out["steps"], int)
    assert out["guidance"] == 7.0 and isinstance(out["guidance"], float)
    assert out["strict"] is True and out["tonic"] == 1
    for word in ("0", "false", "No", "OFF"):
        assert declared().resolve("generate", {"strict": word})["strict"] is False
    assert out["group"] == "g1" and out["alternative"] == 2
    assert declared().resolve("generate", {"tonic": "d"})["tonic"] == 2  # a label
    assert declared().resolve("generate", {"tonic": "Db"})["tonic"] == 1  # an alias
    assert declared().resolve("generate", {"tonic": "auto"})["tonic"] == "auto"


@pytest.mark.parametrize("values, message", [
    ({"steps": 0}, "Steps must be between 1 and 200 (got 0)"),
    ({"steps": 2.5}, "Steps must be a whole number"),
    ({"steps": True}, "Steps must be a number"),
    ({"guidance": float("nan")}, "Guidance must be a finite number"),
    ({"guidance": "lots"}, "Guidance must be a number"),
    ({"strict": "perhaps"}, "Strict must be true or false"),
    ({"tonic": "H"}, "Tonic must be one of C, C♯/D♭, D, auto"),
    ({"tonic": True}, "Tonic must be one of"),
    ({"note": "x" * 11}, "Note is too long"),
    ({"note": 5}, "Note must be text"),
])
def test_wrong_values_say_what_is_wrong(values, message):
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        declared().resolve("generate", values)


def test_resolve_either_refuses_or_gives_values_in_range():
    seen = Outcomes()

    @settings(max_examples=examples(300, least=40), deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.dictionaries(st.sampled_from(["steps", "guidance", "strict", "tonic", "note"]),
                           st.one_of(st.integers(), st.floats(), st.text(max_size=12),
                                     st.booleans(), st.none())))
    def check(values):
        try:
            out = declared().resolve("generate", values)
        except BadInput:
            seen["refused"] += 1
            return
        assert 1 <= out["steps"] <= 200 and 0.0 <= out["guidance"] <= 30.0
        assert isinstance(out["strict"], bool) and out["tonic"] in (0, 1, 2, "auto")
        assert declared().resolve("generate", out) == out  # resolving is idempotent
        seen["resolved"] += 1
        seen["given"] += bool(values)  # not only the defaults

    check()
    seen.require("refused", "resolved", "given")


def test_bad_declarations_are_refused():
    base = {"name": "x", "type": "int", "default": 1}
    for bad in ({**base, "name": "not an id"}, {**base, "type": "list"},
                {k: v for k, v in base.items() if k != "default"},
                {**base, "min": 5}, {**base, "min": "low"},
                {"name": "c", "type": "choice", "default": "a"},
                {"name": "c", "type": "choice", "default": "a", "choices": ["a"],
                 "labels": ["A", "B"]},
                {**base, "flags": ["-x"]}, {**base, "flags": ["--x\n"]}):
        with pytest.raises(ParamError):
            ParamSet.from_list([bad])
    assert Param.from_dict(base).title == "X"
    assert ParamSet.from_list([{**base, "flags": ["--x-1"]}])  # a good flag is taken


def test_every_builtin_plugin_declares_what_its_panel_and_cli_use():
    registry = PluginRegistry.discover(entry_points=False)
    declared = {r.id: {p.name for p in r.manifest.params} for r in registry.plugins}
    assert {"temperature", "top_p", "max_tokens", "system", "context"} <= declared["text"]
    assert {"steps", "guidance", "scheduler", "width", "height"} <= declared["image"]
    assert {"tonic", "mode", "bars", "time_signature", "keep_bars"} <= declared["music"]
    assert {"size", "tile", "precision"} <= declared["upscale"]
    for record in registry.plugins:  # every default passes its own declaration
        for task in record.manifest.tasks:
            record.manifest.params.resolve(task.id, {})


def test_a_param_set_is_looked_up_by_name_and_labels_its_choices():
    assert "steps" in declared() and "nothing" not in declared()
    assert "keep" in declared()  # declared for another task: still declared
    assert declared().get("guidance").default == 3.0 and declared().get("keep").max == 32
    with pytest.raises(KeyError, match="^'nothing'$"):
        declared().get("nothing")
    assert declared().defaults("continue") == {"steps": 25, "guidance": 3.0, "strict": False,
                                             "keep": 4, "note": ""}
    assert declared().defaults("generate")["tonic"] == 0 and "keep" not in \
        declared().defaults("generate")
    tonic = declared().get("tonic")
    assert tonic.choice_label(1) == "C♯/D♭" and tonic.choice_label("auto") == "auto"
    assert tonic.choice_label(7) == "7"  # not a choice: as it is
    bare = Param("mode", "choice", "a", choices=("a", "b"))
    assert bare.choice_label("b") == "b" and bare.choice_label(None) == "None"
    assert declared().get("steps").choice_label(5) == "5"


@pytest.mark.parametrize("declaration, value, message", [
    ({"min": 0.5, "max": 2.25}, 3, "between 0.5 and 2.25 (got 3)"),
    ({"min": 0.5}, -1.0, "between 0.5 and … (got -1)"),
    ({"max": 1e-5}, 0.25, "between … and 1e-05 (got 0.25)"),
    ({"min": 2, "max": 7}, 9, "between 2 and 7 (got 9)"),
])
def test_ranges_are_said_as_numbers_are_written(declaration, value, message):
    default = declaration.get("min", 0.0)
    params = ParamSet.from_list([{"name": "x", "type": "float", "default": default,
                                  **declaration}])
    with pytest.raises(BadInput, match="^X must be " + message.replace("(", r"\(")
                       .replace(")", r"\)").replace(".", r"\.") + r"\.$"):
        params.resolve("generate", {"x": value})


def test_whole_number_ranges_are_said_in_full():
    params = ParamSet.from_list([{"name": "seed", "type": "int", "default": 0, "min": 0,
                                  "max": 100_000_000}])
    with pytest.raises(BadInput, match=r"^Seed must be between 0 and 100000000 "
                                       r"\(got 123456789\)\.$"):
        params.resolve("generate", {"seed": 123_456_789})
