"""Presets, request snippets and the schema-generated controls, without a server."""
import ast
import json
import shlex

import gradio as gr
import pytest

import effects
from effects.schema import DEFAULTS, EFFECTS, FIELDS, FIELDS_BY_NAME
from studio import handlers, presets, snippets, ui
from common.errors import InputError


def test_builtin_presets_are_valid_and_plenty():
    builtin, problems = presets.load_builtin()
    assert problems == []
    assert len(builtin) >= 8
    assert {"Cinematic", "Vintage film", "Newspaper", "Noir", "Dreamy glow", "Cross process",
            "Faded summer", "Crisp detail"} <= set(builtin)
    for name, body in builtin.items():
        assert "image_url" not in body and "dissolve_image_url" not in body, name
        assert any(body.get(e.enable.name) for e in EFFECTS), f"{name} enables nothing"
        effects.validate(body)  # raises on any invalid field


def test_builtin_files_are_fal_bodies_that_differ_from_defaults():
    for path in sorted(presets.PRESETS_DIR.glob("*.json")):
        body = json.loads(path.read_text())
        for key, value in body.items():
            assert key in FIELDS_BY_NAME, f"{path.name}: {key}"
            if not key.startswith("enable_"):
                assert value != DEFAULTS[key], f"{path.name}: {key} repeats fal's default"


def test_broken_preset_file_is_reported_not_fatal(tmp_path):
    (tmp_path / "good.json").write_text('{"enable_vignette": true}')
    (tmp_path / "range.json").write_text('{"contrast": 300}')
    (tmp_path / "typo.json").write_text('{"contrst": 3}')
    (tmp_path / "syntax.json").write_text('{"enable_grain": tru')
    (tmp_path / "list.json").write_text("[1, 2]")
    loaded, problems = presets.load_builtin(tmp_path)
    assert loaded == {"Good": {"enable_vignette": True}}
    assert len(problems) == 4
    text = "\n".join(problems)
    assert f"{tmp_path.name}/range.json: contrast: 300 is out of range; allowed [-100, 100]" in text
    assert "typo.json: contrst: unknown field; did you mean 'contrast'?" in text
    assert "syntax.json: not valid JSON" in text
    assert "list.json: must be a JSON object of fal fields" in text


def test_read_preset_drops_images_and_orders_fields():
    raw = json.dumps({"vignette_strength": 0.3, "image_url": "https://x/y.png",
                      "dissolve_image_url": "https://x/z.png", "enable_vignette": True, "seed": 4})
    assert list(presets.read_preset(raw)) == ["enable_vignette", "vignette_strength", "seed"]


def test_read_preset_error_is_an_input_error_naming_source_and_field():
    with pytest.raises(InputError) as err:
        presets.read_preset(b'{"tint_mode": "pink"}', source="mine.json")
    assert err.value.status == 422
    assert str(err.value).startswith("mine.json: tint_mode: 'pink' is not one of 'sepia'")


def test_save_keeps_only_non_defaults_plus_every_enable_flag():
    settings = dict(DEFAULTS, enable_glow=True, glow_radius=9, contrast=12.0,
                    dissolve_image_url="/tmp/x.png")
    preset = presets.to_preset(settings, seed=11)
    flags = {e.enable.name: e.enable.name == "enable_glow" for e in EFFECTS}
    assert preset == {**flags, "contrast": 12.0, "glow_radius": 9, "seed": 11}
    assert list(preset)[:2] == ["enable_grain", "enable_color_correction"]  # fal order


def test_save_then_load_round_trips_every_field():
    settings = presets.full_settings(presets.load_builtin()[0]["Crisp detail"])
    assert presets.full_settings(presets.to_preset(settings)) == settings
    assert presets.full_settings({}) == {f.name: f.default for f in FIELDS}


def test_preset_updates_set_every_control_once_and_visibility_of_modes():
    updates = handlers.preset_updates({"sharpen_mode": "cas", "cas_amount": 0.3, "seed": 5})
    assert len(updates) == len(FIELDS) + 1
    by_name = dict(zip([f.name for f in FIELDS] + ["seed"], updates))
    assert by_name["cas_amount"] == {"__type__": "update", "value": 0.3, "visible": True}
    assert by_name["sharpen_alpha"] == {"__type__": "update", "value": 1.0, "visible": False}
    assert by_name["contrast"] == {"__type__": "update", "value": 0.0}
    assert by_name["dissolve_image_url"] == gr.skip()  # an uploaded second image stays
    assert by_name["seed"] == {"__type__": "update", "value": 5}


def test_snippets_are_runnable_python_and_exact_curl_json():
    preset = {"enable_tint": True, "tint_mode": "teal", "desaturate_method": "luminance (Rec.601)"}
    body, python, curl = snippets.request_snippets(preset)
    assert json.loads(body) == {"image_url": snippets.EXAMPLE_IMAGE_URL, **preset}
    tree = ast.parse(python)
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "attr", "") == "predict")
    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg != "image_url"}
    assert kwargs == {**preset, "api_name": "/process"}
    argv = shlex.split(curl)
    assert argv[:3] == ["curl", "-X", "POST"]
    assert argv[3] == f"{snippets.SERVER}/api/post-processing"
    assert json.loads(argv[argv.index("-d") + 1]) == json.loads(body)


def test_snippet_curl_quotes_apostrophes():
    *_, curl = snippets.request_snippets({"enable_grain": True}, server="http://h'x")
    assert shlex.split(curl)[3] == "http://h'x/api/post-processing"


def test_controls_follow_the_schema_table():
    with gr.Blocks():
        controls, accordions = ui.build_effect_controls()
    assert list(controls) == [f.name for f in FIELDS]
    assert list(accordions) == [e.key for e in EFFECTS]
    for f in FIELDS:
        c = controls[f.name]
        if f.kind in ("int", "float"):
            assert isinstance(c, gr.Slider), f.name
            assert (c.minimum, c.maximum, c.step, c.value) == (f.minimum, f.ui_maximum or f.maximum,
                                                               f.step, f.default)
            assert c.precision == (0 if f.kind == "int" else None), f.name
        elif f.kind == "enum":
            assert [choice[1] for choice in c.choices] == list(f.choices)
            assert c.value == f.default
        elif f.kind == "bool":
            assert isinstance(c, gr.Checkbox) and c.value is False
        else:
            assert isinstance(c, gr.Image) and c.value is None
        if f.kind != "image":
            assert c.info == f.description
        assert c.visible == (f.shown_when is None or DEFAULTS[f.shown_when[0]] in f.shown_when[1])


def test_visibility_updates_follow_the_mode():
    names = [f.name for f in ui.DEPENDENTS["sharpen_mode"]]
    shown = [ui.visibility_update(f, "smart")["visible"] for f in ui.DEPENDENTS["sharpen_mode"]]
    assert dict(zip(names, shown)) == {
        "sharpen_radius": False, "sharpen_alpha": False, "noise_radius": True,
        "preserve_edges": True, "smart_sharpen_strength": True, "smart_sharpen_ratio": True,
        "cas_amount": False}
    (sigma,) = ui.DEPENDENTS["blur_type"]
    assert ui.visibility_update(sigma, "kuwahara") == {"__type__": "update", "visible": False}

