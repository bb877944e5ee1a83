"""Property tests for effects.validate on hypothesis-generated request bodies.

Any body either validates or raises ValueError naming a field — never another exception. A body that
validates comes back complete: every schema field, with the right Python type, finite and in range.
"""
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import effects
from effects.schema import FIELDS, FIELDS_BY_NAME, IMAGE_URL, SEED

NAMES = [f.name for f in FIELDS] + [SEED.name, IMAGE_URL.name]
_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Every JSON type, with the awkward corners: NaN, ±inf, -0.0, huge integers, numeric-looking strings.
json_scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=-(10**30), max_value=10**30), st.sampled_from([10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([math.nan, math.inf, -math.inf, -0.0]),
    st.text(max_size=30),
    st.sampled_from(["", " ", "1", "0", "-1", "0.5", "1e400", "-1e400", "nan", "NaN", "inf", "-Infinity",
                     "true", "false", "yes", "off", " 3 ", "3.0", "0x10", "1_000", "²", "١٢", "9" * 5000,
                     "sepia", "basic", "luminance (Rec.709)"]),
)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
junk_keys = st.one_of(st.text(max_size=20), st.sampled_from(["enable_grian", "Grain_Intensity", "seed ",
                                                             "image", "images", "__class__", "enable_"]))


def _valid_value(field):
    """Values fal's lax validation accepts for ``field``: proper types, plus numeric/boolean strings."""
    if field.kind == "bool":
        return st.one_of(st.booleans(), st.sampled_from([0, 1, "true", "false", " TRUE ", "off", "1"]))
    if field.kind == "enum":
        return st.sampled_from(field.choices)
    if field.kind == "image":
        return st.text(max_size=40)
    lo, hi = field.minimum, field.maximum
    if field.kind == "int":
        ints = st.integers(int(lo), int(hi))
        return st.one_of(ints, ints.map(float), ints.map(str))
    floats = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    return st.one_of(floats, st.integers(math.ceil(lo), math.floor(hi)), floats.map(repr))


@st.composite
def valid_bodies(draw):
    names = draw(st.lists(st.sampled_from(NAMES), unique=True))
    body = {}
    for name in names:
        field = FIELDS_BY_NAME.get(name) or (SEED if name == SEED.name else IMAGE_URL)
        body[name] = draw(st.one_of(st.none(), _valid_value(field)) if name == SEED.name else _valid_value(field))
    return body


@st.composite
def hostile_bodies(draw):
    body = draw(valid_bodies())
    for name in draw(st.lists(st.sampled_from(NAMES), max_size=4)):
        body[name] = draw(json_values)
    if draw(st.booleans()):
        body.update(draw(st.dictionaries(junk_keys, json_values, max_size=2)))
    return body


def _check_complete(body, out):
    assert set(out) <= set(NAMES)
    for field in FIELDS:
        value = out[field.name]
        if field.kind == "bool":
            assert type(value) is bool
        elif field.kind == "enum":
            assert value in field.choices
        elif field.kind == "image":
            assert type(value) is str
        else:
            assert type(value) is (int if field.kind == "int" else float), (field.name, value)
            assert math.isfinite(value) and field.minimum <= value <= field.maximum, (field.name, value)
    if out.get(SEED.name) is not None:
        assert type(out[SEED.name]) is int and SEED.minimum <= out[SEED.name] <= SEED.maximum
    if IMAGE_URL.name in body:
        assert out[IMAGE_URL.name] == body[IMAGE_URL.name]
    for name, given_value in body.items():  # real numbers in range come back as given
        field = FIELDS_BY_NAME.get(name)
        if field and field.kind in ("int", "float") and type(given_value) in (int, float):
            assert out[name] == given_value


def _validate_or_value_error(body):
    try:
        out = effects.validate(body)
    except ValueError as err:
        named = {str(key) for key in body} | {"request"}
        assert any(str(err).startswith(f"{name}: ") for name in named), f"message names no field: {err}"
        return None
    _check_complete(body, out)
    return out


@_SETTINGS
@given(valid_bodies())
def test_valid_bodies_always_validate(body):
    out = effects.validate(body)
    _check_complete(body, out)
    for name in set(body) - {SEED.name, IMAGE_URL.name}:
        field = FIELDS_BY_NAME[name]
        if field.kind == "enum":
            assert out[name] == body[name]


@_SETTINGS
@given(hostile_bodies())
def test_hostile_bodies_validate_or_raise_value_error(body):
    _validate_or_value_error(body)


@_SETTINGS
@given(st.dictionaries(st.one_of(st.sampled_from(NAMES), junk_keys), json_values, max_size=8))
def test_random_dicts_validate_or_raise_value_error(body):
    _validate_or_value_error(body)


@_SETTINGS
@given(json_values)
def test_non_object_bodies_raise_value_error(body):
    if isinstance(body, dict):
        _validate_or_value_error(body)
        return
    try:
        effects.validate(body)
    except ValueError as err:
        assert str(err).startswith("request: ")
    else:
        raise AssertionError(f"validate accepted a {type(body).__name__}")
