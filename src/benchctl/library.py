"""Finds the lab's library: drivers/, procedures/ and simulators/ folders.

The bundled folders sit at the top of a source checkout and inside the package of an installed
wheel (``benchctl/_bundled``). A centre adds its own folders with ``library = [...]`` in
bench.toml. Each kind is exposed as one synthetic package (``benchctl_drivers`` ...) whose
``__path__`` lists exactly those folders, so modules are only ever loaded from the configured
places, and a centre's module may import a bundled sibling with a relative import.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import BenchctlError

KINDS = ("drivers", "procedures", "simulators")
PACKAGE = {kind: f"benchctl_{kind}" for kind in KINDS}


class LibraryError(BenchctlError):
    """A driver, procedure or simulator could not be found or loaded."""


def bundled_root() -> Path:
    """The folder that holds the bundled drivers/, procedures/ and simulators/."""
    here = Path(__file__).resolve().parent
    installed = here / "_bundled"
    if installed.is_dir():
        return installed
    # Source checkout (editable install or PYTHONPATH=src): src/benchctl -> repository root.
    return here.parent.parent


_extra_roots: list[Path] = []


def configure(extra_roots: Iterable[str | Path] = ()) -> None:
    """Set the centre's library folders (each may hold drivers/, procedures/, simulators/)."""
    roots = [Path(r).expanduser().resolve() for r in extra_roots]
    for root in roots:
        if not root.is_dir():
            raise LibraryError(f"library folder {root} does not exist")
    _extra_roots[:] = roots
    for kind in KINDS:
        folders = search_path(kind)
        pkg = sys.modules.get(PACKAGE[kind])
        if pkg is not None:
            pkg.__path__ = [str(p) for p in folders]
        # Forget modules loaded from folders no longer configured, so they cannot be used.
        prefix = PACKAGE[kind] + "."
        for name, module in list(sys.modules.items()):
            if name.startswith(prefix):
                origin = Path(getattr(module, "__file__", "") or "").resolve().parent
                if not any(origin == f.resolve() for f in folders):
                    del sys.modules[name]


def search_path(kind: str) -> list[Path]:
    """Folders searched for ``kind``, the centre's own first so they may override a bundled one."""
    paths = [root / kind for root in _extra_roots if (root / kind).is_dir()]
    bundled = bundled_root() / kind
    if bundled.is_dir():
        paths.append(bundled)
    return paths


def package(kind: str) -> types.ModuleType:
    """The synthetic package for ``kind``, created on first use."""
    name = PACKAGE[kind]
    existing = sys.modules.get(name)
    if existing is not None:
        return existing
    module = types.ModuleType(name, f"benchctl library: {kind}")
    module.__path__ = [str(p) for p in search_path(kind)]
    module.__package__ = name
    spec = importlib.util.spec_from_loader(name, loader=None, is_package=True)
    assert spec is not None
    spec.submodule_search_locations = module.__path__
    module.__spec__ = spec
    sys.modules[name] = module
    return module


def load(kind: str, name: str) -> Any:
    """Import ``name`` from the library (e.g. ``load("drivers", "mettler_sics")``)."""
    if kind not in KINDS:
        raise LibraryError(f"unknown library kind {kind!r}; expected one of {', '.join(KINDS)}")
    if not name.isidentifier():
        raise LibraryError(f"{kind[:-1]} name {name!r} is not a module name")
    pkg = package(kind)
    full = f"{pkg.__name__}.{name}"
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name != full:
            raise
        folders = ", ".join(str(p) for p in search_path(kind)) or "(none)"
        raise LibraryError(f"no {kind[:-1]} named {name!r} in {folders}") from None


def load_file(kind: str, path: str | Path) -> Any:
    """Load a module given as a file path; it must lie inside one of the library folders."""
    p = Path(path).expanduser().resolve()
    for folder in search_path(kind):
        if p.parent == folder.resolve():
            return load(kind, p.stem)
    folders = ", ".join(str(f) for f in search_path(kind))
    raise LibraryError(
        f"{p} is not in a configured {kind} folder ({folders}); add its parent folder's parent "
        "to `library` in bench.toml"
    )


def available(kind: str) -> list[str]:
    names: set[str] = set()
    for folder in search_path(kind):
        for f in folder.glob("*.py"):
            if not f.name.startswith("_"):
                names.add(f.stem)
    return sorted(names)
