"""The schema table against fal's own API document (parsed, not restated) and docs/decisions.md §3."""
import pytest

from effects.schema import DEFAULTS, EFFECTS, FIELDS, FIELDS_BY_NAME, IMAGE_URL, SEED
from seed_doc import seed_example_body, seed_fields

SEED_FIELDS = seed_fields()
KIND_OF_SEED_TYPE = {"boolean": "bool", "float": "float", "integer": "int", "string": "image"}


def test_same_fields_in_the_same_order_as_fal():
    assert [f.name for f in FIELDS] == [n for n in SEED_FIELDS if n != "image_url"]
    assert len(FIELDS) == 53
    assert IMAGE_URL.name == "image_url" and "image_url" in SEED_FIELDS


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.name)
def test_field_matches_fal(field):
    doc = SEED_FIELDS[field.name]
    expected_kind = "enum" if doc["type"].endswith("Enum") else KIND_OF_SEED_TYPE[doc["type"]]
    assert field.kind == expected_kind
    assert field.description == doc["description"]
    assert field.choices == tuple(doc["choices"] or ())
    # fal omits "Default value" for false flags and zero numbers.
    implicit = {"bool": False, "float": 0.0, "int": 0}.get(field.kind)
    assert field.default == (doc["default"] if doc["default"] is not None else implicit)
    assert type(field.default) is {"bool": bool, "float": float, "int": int}.get(field.kind, str)


def test_example_request_body_is_all_defaults():
    body = seed_example_body()
    body.pop("image_url")
    assert body == {k: v for k, v in body.items() if DEFAULTS[k] == v}


RANGES = {  # docs/decisions.md §3, row by row
    "grain_intensity": (0, 1), "grain_scale": (1, 100), "temperature": (-100, 100),
    "brightness": (-100, 100), "contrast": (-100, 100), "saturation": (-100, 100), "gamma": (0.2, 2.2),
    "red_shift": (-20, 20), "green_shift": (-20, 20), "blue_shift": (-20, 20), "blur_radius": (0, 31),
    "blur_sigma": (0.1, 10), "vignette_strength": (0, 10), "parabolize_coeff": (-10, 10),
    "vertex_x": (0, 1), "vertex_y": (0, 1), "tint_strength": (0.1, 1), "dissolve_factor": (0, 1),
    "dodge_burn_intensity": (0, 1), "glow_intensity": (0, 5), "glow_radius": (1, 50),
    "sharpen_radius": (1, 15), "sharpen_alpha": (0.1, 5), "noise_radius": (1, 25),
    "preserve_edges": (0, 1), "smart_sharpen_strength": (0, 25), "smart_sharpen_ratio": (0, 1),
    "cas_amount": (0, 1), "solarize_threshold": (0, 1), "desaturate_factor": (0, 1),
}


def test_ranges_are_the_spec_table():
    numeric = {f.name: (f.minimum, f.maximum) for f in FIELDS if f.kind in ("int", "float")}
    assert numeric == RANGES
    for f in FIELDS:
        if f.kind in ("int", "float"):
            assert f.minimum <= f.default <= f.maximum
            assert f.step > 0 and (f.kind != "int" or f.step == 1)


def test_effects_order_and_flags():
    assert [e.key for e in EFFECTS] == [
        "grain", "color_correction", "chromatic", "blur", "vignette", "parabolize", "tint", "dissolve",
        "dodge_burn", "glow", "sharpen", "solarize", "desaturate"]
    for e in EFFECTS:
        assert e.enable.name == f"enable_{e.key}" and e.enable.kind == "bool"
        for f in e.fields:
            if f.shown_when:
                mode, values = f.shown_when
                assert mode in {g.name for g in e.fields}
                assert set(values) <= set(FIELDS_BY_NAME[mode].choices)


def test_seed_extension_is_not_a_fal_field():
    assert SEED.name not in SEED_FIELDS and SEED.name not in FIELDS_BY_NAME
    assert (SEED.kind, SEED.default, SEED.minimum) == ("int", None, 0)
