"""The run's writes to the store, each its own unit of work (one session, one commit).

A reading is durable when ``record_point`` returns: the procedure does not go on before.
"""

from __future__ import annotations

from typing import Any

from ..instruments import Reading


class RunRecorder:
    def __init__(self, db: Any) -> None:
        self.db = db

    def record_point(self, run_id: int, key: str, data: dict[str, Any],
                     readings: list[Reading], roles: dict[str, str]) -> None:
        from ..store import repository as repo

        with self.db.session() as s:
            repo.record_point(s, run_id, key, data, readings, roles)

    def set_state(self, run_id: int, state: str, message: str | None) -> None:
        from ..store import repository as repo

        with self.db.session() as s:
            repo.set_run_state(s, run_id, str(state), message)

    def set_environment(self, run_id: int, label: str, data: dict[str, Any]) -> None:
        from ..store import repository as repo

        with self.db.session() as s:
            repo.set_environment(s, run_id, label, data)

    def save_results(self, run_id: int, results: list[dict[str, Any]], verdict: str | None
                     ) -> None:
        from ..store import repository as repo

        with self.db.session() as s:
            repo.save_results(s, run_id, results, verdict)
