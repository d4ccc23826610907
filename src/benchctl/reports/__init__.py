"""Certificates and exports, read from the store.

- :mod:`.document`: the run as one plain object (the JSON contract), and its raw records;
- :mod:`.certificate` (HTML), :mod:`.pdf`, :mod:`.dcc` (PTB DCC 3.1.2 XML): the certificate;
- :mod:`.export`: CSV and XLSX of every point and reading;
- :mod:`.paths`: where reports may be written (inside the chosen reports folder).

Submodules are imported on use: ``benchctl run`` needs only the document, not fpdf2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("html", "pdf", "dcc", "csv", "xlsx")
CERTIFICATE_FORMATS = ("html", "pdf", "dcc")


@dataclass(frozen=True)
class Report:
    path: Path
    format: str
    lang: str
    #: True for a final certificate (approved run); False for a draft. Exports: False.
    final: bool
    points: int
    readings: int


def render_report(db: Any, run_id: int, fmt: str, *, lang: str = "vi",
                  laboratory: Any = None) -> tuple[bytes, dict[str, Any]]:
    """The report's bytes and the run document it was made from."""
    if fmt not in FORMATS:
        from ..errors import BenchctlError

        raise BenchctlError(f"report format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt in ("csv", "xlsx"):
        from .document import run_records
        from .export import render_csv, render_xlsx

        records = run_records(db, run_id)
        data = render_csv(records) if fmt == "csv" else render_xlsx(records)
        return data, records["document"]
    from .document import run_document

    doc = run_document(db, run_id)
    if fmt == "html":
        from .certificate import render_html

        return render_html(doc, lang=lang, laboratory=laboratory).encode("utf-8"), doc
    if fmt == "pdf":
        from .pdf import render_pdf

        return render_pdf(doc, lang=lang, laboratory=laboratory).data, doc
    from .dcc import render_dcc

    return render_dcc(doc, lang=lang, laboratory=laboratory), doc


def write_report(db: Any, run_id: int, fmt: str, output: str | Path, *, lang: str = "vi",
                 laboratory: Any = None, folder: str | Path | None = None) -> Report:
    """Write one report of a run inside the reports folder (see :mod:`.paths`).

    The path is checked before anything is rendered, so a refused path costs nothing.
    """
    from .certificate import is_final
    from .paths import safe_output_path, write_output

    safe_output_path(output, folder)
    data, doc = render_report(db, run_id, fmt, lang=lang, laboratory=laboratory)
    path = write_output(output, data, folder)
    final = fmt in CERTIFICATE_FORMATS and is_final(doc)
    return Report(path=path, format=fmt, lang=lang, final=final, points=len(doc["points"]),
                  readings=int(doc["readings"]))
