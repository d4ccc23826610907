"""The hypothesis profile of the fuzz tests, and TOML text from Python values.

``BENCHCTL_FUZZ_EXAMPLES`` sets the examples per test (default 100: the suite stays fast;
``BENCHCTL_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_*.py`` for a long night). The profile is
derandomised so a failure in CI is the same failure on a laptop.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile(
    "benchctl-fuzz",
    max_examples=int(os.environ.get("BENCHCTL_FUZZ_EXAMPLES", "100")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FUZZ = settings.get_profile("benchctl-fuzz")


def toml_value(v: Any) -> str:
    """Any value hypothesis makes, as an inline TOML value (dates, nan and inf included)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, str):
        out = []
        for ch in v:
            if ch in ('"', "\\"):
                out.append("\\" + ch)
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def toml_key(k: str) -> str:
    return k if k and all(c.isalnum() or c in "_-" for c in k) and k.isascii() else toml_value(k)


def toml_document(data: dict[str, Any]) -> str:
    """A document whose top-level keys are each ``key = <inline value>``."""
    return "\n".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in data.items()) + "\n"


# -- strategies ---------------------------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
scalars = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True),
    text, st.dates(), st.sampled_from(["", "g", "kPa", "II", "balance", "sqlite:///x.db"]),
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=8,
)


def mutated(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid document with some keys removed, replaced by anything, or added."""
    def build(draw: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in base.items():
            choice = draw(st.integers(0, 9))
            if choice == 0:
                continue  # removed
            if choice == 1:
                out[key] = draw(values)  # anything
            elif choice == 2 and isinstance(value, dict):
                out[key] = draw(mutated(value))
            elif choice == 3 and isinstance(value, list) and value and isinstance(value[0], dict):
                out[key] = [draw(mutated(value[0])), *value[1:]]
            else:
                out[key] = value
        if draw(st.integers(0, 5)) == 0:
            out[draw(st.text(min_size=1, max_size=8))] = draw(values)
        return out

    return st.composite(lambda draw: build(draw))()
