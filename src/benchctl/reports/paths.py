"""Where a report may be written: inside the chosen reports folder, never outside it.

"The chosen folder" is ``--reports-dir DIR`` when given, else ``$BENCHCTL_REPORTS_DIR``, else
the current directory. ``-o FILE`` is taken relative to it (an absolute FILE must lie inside
it). Refused, each with a message naming the path and the folder:

- any ``..`` component (even one that would land back inside: a path that climbs is never
  what a technician meant, and refusing it outright is easy to explain);
- a path that leaves the folder once symlinks are followed (a symlinked subfolder or file
  pointing elsewhere);
- an existing symlink as the file itself, and an existing directory.

Why this matters on a bench PC: automation (a robot, a LIMS) passes ``-o`` built from job data
such as a serial number; ``../../etc/cron.d/x`` or a planted symlink must not let it write
anywhere the account can.

The file is written to a temporary name in the same folder, then renamed over the target, so a
reader never sees half a certificate and a symlink created after the check is replaced, not
followed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ..errors import BenchctlError

ENV_VAR = "BENCHCTL_REPORTS_DIR"


class OutputPathError(BenchctlError):
    """A report or export path that would leave the chosen folder."""


def reports_folder(chosen: str | Path | None = None) -> Path:
    """The folder reports go into, resolved (it must exist)."""
    raw = chosen if chosen is not None else os.environ.get(ENV_VAR) or None
    where = Path(raw) if raw is not None else Path.cwd()
    origin = ("--reports-dir" if chosen is not None else f"${ENV_VAR}" if raw is not None
              else "the current directory")
    try:
        folder = where.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise OutputPathError(f"reports folder {where} ({origin}) does not exist") from None
    except OSError as exc:
        raise OutputPathError(f"reports folder {where} ({origin}): {exc.strerror}") from None
    if not folder.is_dir():
        raise OutputPathError(f"reports folder {where} ({origin}) is not a folder")
    return folder


def safe_output_path(output: str | Path, folder: str | Path | None = None) -> Path:
    """The path to write ``output`` to, checked to stay inside the reports folder."""
    base = reports_folder(folder)
    out = Path(output)
    text = str(output)
    hint = (f"write inside the reports folder {base}, or choose the folder with --reports-dir "
            f"DIR or ${ENV_VAR}")
    if not text.strip():
        raise OutputPathError("empty report path (-o)")
    if "\x00" in text:
        raise OutputPathError(f"report path {text!r} contains a NUL character")
    if ".." in out.parts:
        raise OutputPathError(f"report path {text} climbs out with '..'; {hint}")
    candidate = out if out.is_absolute() else base / out
    real = candidate.resolve(strict=False)
    if not _inside(real, base):
        if _inside(Path(os.path.abspath(candidate)), base):
            raise OutputPathError(f"report path {text} leads out of the reports folder {base} "
                                  f"through a symlink (to {real}); {hint}")
        raise OutputPathError(f"report path {text} is outside the reports folder {base}; {hint}")
    if candidate.is_symlink():
        raise OutputPathError(f"report path {text} is a symlink; refusing to write through it")
    if real.is_dir():
        raise OutputPathError(f"report path {text} is a folder; give a file name")
    if real == base:
        raise OutputPathError(f"report path {text} names the reports folder itself")
    return real


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def write_output(output: str | Path, data: bytes, folder: str | Path | None = None) -> Path:
    """Write ``data`` to ``output`` inside the reports folder (atomically); the path written."""
    target = safe_output_path(output, folder)
    base = reports_folder(folder)
    # Create missing subfolders one by one, checking each stays inside (no symlink races on
    # the folders we make ourselves).
    missing = []
    parent = target.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for d in reversed(missing):
        d.mkdir()
        if not _inside(d.resolve(strict=True), base):
            raise OutputPathError(f"report folder {d} leads out of the reports folder {base}")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target
