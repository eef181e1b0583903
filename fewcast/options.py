"""Settings as command-line options: one flag per field (``--inner-lr`` for ``learner.inner_lr``), its help
text the field's own, booleans as ``--name`` / ``--no-name``; and error messages in the command line's terms.

A library error names a setting in backquotes (`` `fill=True` ``, `` `input_size` ``); :func:`as_flags`
spells it as the flag that sets it (``--fill``, ``--input-size``).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import fields

from fewcast.config import Settings, load_toml

# settings whose flag is not their name
OPTION_NAMES = {("model", "name"): "--model", ("learner", "name"): "--learner"}


def flag(section: str, name: str) -> str:
    return OPTION_NAMES.get((section, name), "--" + name.replace("_", "-"))


def add_settings_options(p: argparse.ArgumentParser, sections: tuple[str, ...],
                         only: dict[str, tuple[str, ...]] | None = None, config: bool = True) -> None:
    """A flag for every setting of ``sections`` (of a section in ``only``: those named there); each one's
    default leaves the setting as the preset or ``--config`` file has it."""
    base = Settings()
    if config:
        p.add_argument("--config", help="a TOML settings file (as written to config.toml by every run)")
    for section in sections:
        part = getattr(base, section)
        g = p.add_argument_group(f"[{section}] settings", (type(part).__doc__ or "").strip())
        for f in fields(part):
            if only and section in only and f.name not in only[section]:
                continue
            default = getattr(part, f.name)
            shown = ",".join(map(str, default)) if isinstance(default, list) else default
            text = f"{f.metadata['help']} (default: {shown})".replace("%", "%%")
            dest = f"set__{section}__{f.name}"
            if isinstance(default, bool):
                g.add_argument(flag(section, f.name), dest=dest, default=None, action=argparse.BooleanOptionalAction,
                               help=text)
            else:
                g.add_argument(flag(section, f.name), dest=dest, default=None,
                               metavar=type(default).__name__.upper(), help=text)


def settings_from_args(args: argparse.Namespace, base: Settings | None = None) -> Settings:
    """Settings from ``--config`` (else ``base``, else the defaults), then every option given."""
    settings = load_toml(args.config) if getattr(args, "config", None) else (base or Settings())
    for key, value in vars(args).items():
        if key.startswith("set__") and value is not None:
            _, section, name = key.split("__", 2)
            settings.update(section, {name: value}, "command line")
    return settings


_SETTING = re.compile(r"`([a-z_]+)(?:=([^`]*))?`")


def as_flags(message: str) -> str:
    """``message`` with every setting it names in backquotes spelled as its flag: `` `shots=7` `` as
    ``--shots 7``, `` `fill=True` `` as ``--fill``, `` `fill=False` `` as ``--no-fill``; and ``forecast``'s lists
    ``level=[80, 95]`` as ``--level 80 95``."""
    sections = Settings().field_sections()

    def spell(match: re.Match) -> str:
        name, value = match.groups()
        if name not in sections:
            return match.group(0)
        option = flag(sections[name], name)
        if value is None or value.lower() == "true":
            return option
        if value.lower() == "false":
            return "--no-" + option[2:]
        return f"{option} {value}"

    message = re.sub(r"\b(level|quantiles)=\[([^\]]*)\]",
                     lambda m: f"--{m.group(1)} {' '.join(m.group(2).replace(',', ' ').split())}", message)
    return _SETTING.sub(spell, message)
