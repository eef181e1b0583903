"""Errors and warnings that fewcast raises about its input.

Every problem with a user's data is an :class:`InputError` (a ``ValueError``): one line that names the
column, the offending series' ``unique_id`` values (first few and a count) and how to fix it. The command
line prints it to stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence


class InputError(ValueError):
    """Bad input data or settings: the message says what is wrong and how to fix it."""


class RunWarning(UserWarning):
    """A run directory read while another process writes it (its last complete checkpoint is used)."""


class StorageError(OSError):
    """A file could not be written (no space, a file size limit, a read-only directory): the message names it.
    What was written before it stays whole: a checkpoint is replaced only once the new one is complete."""


class PanelWarning(UserWarning):
    """Something was dropped or changed in the input, with a count (e.g. series too short)."""


def describe_ids(ids: Sequence, limit: int = 5) -> str:
    """``'a', 'b', 'c' and 7 more (10 series)`` for error messages."""
    ids = list(ids)
    shown = ", ".join(repr(_plain(i)) for i in ids[:limit])
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return f"{shown}{more} ({len(ids)} series)"


def _plain(value):
    """numpy scalars print as plain Python values (``'a'`` rather than ``np.str_('a')``)."""
    return value.item() if hasattr(value, "item") else value
