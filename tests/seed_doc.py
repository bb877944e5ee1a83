"""Parser for fal's post-processing API document (its schema part, copied into tests/data): the contract
the schema follows."""
import json
import re
from pathlib import Path

SEED = Path(__file__).resolve().parent / "data" / "fal-post-processing-api.txt"


def seed_fields() -> dict[str, dict]:
    """Field name → {"type", "description", "default" (parsed JSON or None), "choices" (list or None)}.

    The Input section lists each field as three or four lines: name, "\\xa0<type>", description with an
    optional "Default value: <json>", and optionally "Possible enum values: a, b, c".
    """
    text = SEED.read_text(encoding="utf-8")
    section = text[text.index("\nInput#\n") + 8:text.index("\nOutput#\n")]
    section = section[:section.index("\n{")]  # the example request body follows the field list
    lines = section.split("\n")
    fields, i = {}, 0
    while i < len(lines):
        name, kind, desc = lines[i], lines[i + 1].strip("\xa0 "), lines[i + 2]
        i += 3
        choices = None
        if i < len(lines) and lines[i].startswith("Possible enum values: "):
            choices = lines[i][len("Possible enum values: "):].split(", ")
            i += 1
        m = re.search(r"\s*Default value: (.*)$", desc)
        default = json.loads(m.group(1)) if m else None
        desc = desc[:m.start()] if m else desc
        fields[name] = {"type": kind, "description": desc.removeprefix("* required"),
                        "default": default, "choices": choices}
    return fields


def seed_example_body() -> dict:
    """The example request body printed after the field list."""
    text = SEED.read_text(encoding="utf-8")
    section = text[text.index("\nInput#\n"):text.index("\nOutput#\n")]
    return json.loads(section[section.index("\n{") + 1:])
