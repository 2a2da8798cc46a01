"""Pass free text through Hydra's override grammar and OmegaConf interpolation untouched."""

from __future__ import annotations

import re


def quote_override_value(value: str) -> str:
    """Quote `value` so that Hydra + OmegaConf hand back exactly `value` (commas, `${`, quotes)."""
    value = re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", value)
    # backslashes before a quote or at the very end (\Z: `$` would also match before a final
    # newline) escape themselves
    value = re.sub(r"(\\+)(?='|\Z)", lambda m: m.group(1) * 2, value)
    return "'" + value.replace("'", "\\'") + "'"


def quote_free_text_args(argv: list[str], keys: tuple[str, ...]) -> list[str]:
    """Rewrite `key=anything` arguments so the shell's unquoted text reaches the config as is."""
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        out.append(f"{key}={quote_override_value(value)}" if sep and key in keys else arg)
    return out
