"""The column-aligned text tables that fab tasks print (releases, status, certificates, backups)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from tabulate import tabulate


def table(headers: Sequence[str], rows: Iterable[Sequence[object]],
          align: Sequence[str] | None = None) -> str:
    """`headers` over `rows` in aligned columns, two spaces apart, with no rules and no trailing blanks.

    Cells are printed as given (no number parsing: release ids and commits stay as they are), left-aligned
    unless `align` names another alignment ("right", "center") for that column."""
    text = tabulate([["" if cell is None else str(cell) for cell in row] for row in rows],
                    headers=list(headers), tablefmt="plain", disable_numparse=True,
                    stralign="left", colalign=list(align) if align else None)
    return "\n".join(line.rstrip() for line in text.splitlines())
