"""Settings from environment variables, read the same way everywhere."""
from __future__ import annotations

import os


class ConfigError(RuntimeError):
    """The server's configuration (an environment variable, a checkpoint, a file it needs) is wrong.
    A deployment problem, never the client's: the APIs answer it with a logged 5xx."""


def env_number(name: str, default: int | float, *, kind: type = int, minimum: float = 1) -> int | float:
    """``kind(os.environ[name])`` when set and ≥ ``minimum``, ``default`` when unset or empty.

    A value that is not a number of that kind, or is below ``minimum``, is a deployment mistake:
    ``ConfigError`` naming the variable, raised at the first use rather than silently ignored.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or value != value or value < minimum:
        noun = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name} must be {noun} >= {minimum:g}, got {raw!r}")
    return value


def env_list(name: str) -> list[str]:
    """The comma-separated entries of ``os.environ[name]``, stripped, empty ones dropped (unset: [])."""
    return [entry.strip() for entry in os.environ.get(name, "").split(",") if entry.strip()]
