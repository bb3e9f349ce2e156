"""Unknown names (models, data sets, formats, commands): one message with the near misses ("did you mean")."""
from __future__ import annotations

import difflib


def did_you_mean(name: str, known) -> str:
    """'; did you mean 'lenet5'?' for a near miss among `known` names, else ''."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=2, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


def unknown_name(what: str, name: str, known) -> ValueError:
    """The one-line error for a name that is not one of `known`: what, the near misses, every choice."""
    known = sorted(known)
    return ValueError(f"unknown {what} {name!r}{did_you_mean(name, known)} (choose from {', '.join(known)})")
