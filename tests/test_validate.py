"""effects.validate: defaults, coercions fal's server also accepts, and every refusal with its message."""
import math

import pytest

from effects import ValidationError, validate
from effects.schema import DEFAULTS, FIELDS


def test_empty_request_is_all_defaults():
    assert validate({}) == DEFAULTS
    assert "seed" not in validate({}) and "image_url" not in validate({})


def test_types_of_a_complete_request():
    out = validate({})
    for f in FIELDS:
        assert type(out[f.name]) is {"bool": bool, "int": int, "float": float}.get(f.kind, str), f.name


def test_passthrough_and_seed():
    out = validate({"image_url": "https://x/y.png", "dissolve_image_url": "data:image/png;base64,AA",
                    "seed": 7})
    assert out["image_url"] == "https://x/y.png"
    assert out["dissolve_image_url"] == "data:image/png;base64,AA"
    assert out["seed"] == 7 and type(out["seed"]) is int
    assert "seed" not in validate({"seed": None})


@pytest.mark.parametrize("given, field, expected", [
    ({"grain_intensity": "0.25"}, "grain_intensity", 0.25),   # numeric string
    ({"grain_scale": 5}, "grain_scale", 5.0),                 # int for a float field
    ({"blur_radius": 4.0}, "blur_radius", 4),                 # integral float for an int field
    ({"blur_radius": "4"}, "blur_radius", 4),
    ({"red_shift": -20}, "red_shift", -20),                   # inclusive bounds
    ({"gamma": 2.2}, "gamma", 2.2),
    ({"enable_blur": "true"}, "enable_blur", True),
    ({"enable_blur": 0}, "enable_blur", False),
    ({"seed": "12"}, "seed", 12),
])
def test_lax_coercions(given, field, expected):
    value = validate(given)[field]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("given, message", [
    ({"grain_intensty": 0.3}, "grain_intensty: unknown field; did you mean 'grain_intensity'?"),
    ({"enable_glw": True}, "enable_glw: unknown field; did you mean 'enable_glow'?"),
    ({"zzz": 1}, "zzz: unknown field; see the schema"),
    ({"blur_radius": 3.5}, "blur_radius: must be an integer, got 3.5"),
    ({"glow_radius": "2.5"}, "glow_radius: must be an integer, got '2.5'"),
    ({"grain_scale": "big"}, "grain_scale: must be a number in [1, 100], got the string 'big'"),
    ({"grain_scale": None}, "grain_scale: must be a number in [1, 100], got NoneType"),
    ({"grain_scale": True}, "grain_scale: must be a number in [1, 100], got bool"),
    ({"vertex_x": [0.5]}, "vertex_x: must be a number in [0, 1], got list"),
    ({"vertex_x": math.nan}, "vertex_x: must be a finite number in [0, 1], got nan"),
    ({"vertex_x": "inf"}, "vertex_x: must be a finite number in [0, 1], got inf"),
    ({"gamma": 0.1}, "gamma: 0.1 is out of range; allowed [0.2, 2.2]"),
    ({"red_shift": 21}, "red_shift: 21 is out of range; allowed [-20, 20]"),
    ({"tint_strength": 0}, "tint_strength: 0 is out of range; allowed [0.1, 1]"),
    ({"tint_mode": "Sepia"}, "tint_mode: 'Sepia' is not one of 'sepia', 'red'"),
    ({"tint_mode": "sepai"}, "(did you mean 'sepia'?)"),
    ({"desaturate_method": "luminance"}, "desaturate_method: 'luminance' is not one of"),
    ({"blur_type": 1}, "blur_type: 1 is not one of 'gaussian', 'kuwahara'"),
    ({"enable_grain": "maybe"}, "enable_grain: must be true or false, got 'maybe'"),
    ({"enable_grain": 2}, "enable_grain: must be true or false, got 2"),
    ({"dissolve_image_url": 5}, "dissolve_image_url: must be a URL string, got int"),
    ({"seed": -1}, "seed: -1 is out of range; allowed [0, 4294967295]"),
    ({"seed": 1.5}, "seed: must be an integer, got 1.5"),
])
def test_refusals_name_the_field_and_what_is_allowed(given, message):
    with pytest.raises(ValidationError) as err:
        validate(given)
    assert message in str(err.value)
    assert err.value.field == next(iter(given))
    assert isinstance(err.value, ValueError)


def test_not_a_mapping():
    with pytest.raises(ValidationError, match="request: must be a JSON object of fields, got list"):
        validate([("grain_intensity", 1)])


def test_input_is_not_modified():
    given = {"grain_intensity": "0.5"}
    validate(given)
    assert given == {"grain_intensity": "0.5"}
