"""People and approval: who may perform, review and sign, and when a certificate is final.

ISO/IEC 17025 7.8.2.1 (o) wants the person(s) authorising the certificate identified, and 7.8.1.1
a review before results are released. The rules kept here:

- A run is performed by a person; once the person register has anyone in it, only an active
  person holding the ``operator`` role may perform runs. (An empty register is a fresh bench or
  the demo: the login name is recorded.)
- Review: an active person holding ``reviewer`` or ``signatory``, not the one who performed it.
- Approval: after review, by an active person holding ``signatory``, not the one who performed
  it. Approval issues the certificate number. A passed verification gets its stamp serial and
  valid-until date at approval (Circular 24/2013 Art. 39-40); a failed one gets neither.
- Only an approved run has a final certificate; anything else prints as a draft.

Each check runs under the records' lock in the same transaction as the write, so two
signatories approving the same run at once cannot both succeed.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from collections.abc import Collection
from typing import Any

from benchctl.errors import BenchctlError

__all__ = [
    "APPROVE_ROLES",
    "PERFORM_ROLES",
    "REVIEW_ROLES",
    "ApprovalError",
    "approve",
    "certificate_status",
    "check_person",
    "default_person",
    "require_final",
    "resolve_performer",
    "review",
]

PERFORM_ROLES = ("operator",)
REVIEW_ROLES = ("reviewer", "signatory")
APPROVE_ROLES = ("signatory",)
#: Environment variable naming who performs runs when ``--performed-by`` is not given.
ENV_OPERATOR = "BENCHCTL_OPERATOR"


class ApprovalError(BenchctlError):
    """A review, an approval or a final certificate the rules do not allow."""


def check_person(s: Any, name: str, roles: Collection[str], what: str) -> Any:
    """The active person ``name`` holding one of ``roles``, else :class:`ApprovalError`
    saying what is missing and how to fix the register."""
    from benchctl.store import repository as repo

    person = repo.get_person(s, name)
    need = " or ".join(roles)
    if person is None:
        raise ApprovalError(
            f"{what}: {name!r} is not in the person register",
            detail=f"register them: benchctl person add {name!r} --role {next(iter(roles))}")
    if not person.active:
        raise ApprovalError(f"{what}: {name} is no longer active in the person register")
    if not set(roles) & set(person.roles):
        held = ", ".join(person.roles) or "none"
        raise ApprovalError(f"{what}: {name} does not hold the role {need} (holds: {held})")
    return person


def resolve_performer(s: Any, name: str | None) -> str:
    """Who performs a run: ``name``, else ``$BENCHCTL_OPERATOR``, else the login name; checked
    against the person register once it has anyone in it."""
    from benchctl.store import repository as repo

    chosen = (name or "").strip() or default_person("who performs this run? give "
                                                    "--performed-by NAME")
    if repo.list_people(s):
        check_person(s, chosen, PERFORM_ROLES, "performed by")
    return chosen


def default_person(ask: str = "who makes this change? give --by NAME") -> str:
    """The person a command acts for when none is named: ``$BENCHCTL_OPERATOR``, else the
    login name (raises ApprovalError with ``ask`` when there is neither)."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container) and no LOGNAME/USER
        login = ""
    name = (os.environ.get(ENV_OPERATOR, "") or login).strip()
    if not name:
        raise ApprovalError(ask)
    return name


def review(db: Any, run_id: int, by: str, *, at: dt.datetime | None = None) -> dict[str, Any]:
    """Record the review of a completed run; returns the run's people (see run_people)."""
    from benchctl.store import repository as repo

    with db.session() as s:
        repo.lock_records(s)
        run = _run(s, run_id)
        check_person(s, by, REVIEW_ROLES, f"review of run {run_id}")
        if run.performed_by == by:
            raise ApprovalError(f"review of run {run_id}: {by} performed it; another person "
                                "reviews it")
        repo.record_review(s, run_id, by, at)
        return dict(repo.run_people(s, run_id))


def approve(db: Any, run_id: int, by: str, *, stamp_number: str | None = None,
            valid_until: dt.date | None = None, at: dt.datetime | None = None,
            prefix: str = "BC") -> dict[str, Any]:
    """Approve a reviewed run and issue its certificate number; returns the run's people."""
    from benchctl.store import repository as repo

    stamp_number = (stamp_number or "").strip() or None
    with db.session() as s:
        repo.lock_records(s)
        run = _run(s, run_id)
        what = f"approval of run {run_id}"
        check_person(s, by, APPROVE_ROLES, what)
        if run.performed_by == by:
            raise ApprovalError(f"{what}: {by} performed it; another signatory approves it")
        when = at or dt.datetime.now(dt.UTC)
        _check_stamp(run, stamp_number, valid_until, when.astimezone().date(), what)
        repo.record_approval(s, run_id, by, at=when, stamp_number=stamp_number,
                             valid_until=valid_until, prefix=prefix)
        return dict(repo.run_people(s, run_id))


def _check_stamp(run: Any, stamp: str | None, valid_until: dt.date | None, today: dt.date,
                 what: str) -> None:
    if valid_until is not None and valid_until <= today:
        raise ApprovalError(f"{what}: --valid-until {valid_until.isoformat()} is not after "
                            f"the approval date {today.isoformat()}")
    if run.mode != "verify":
        return
    if run.verdict == "pass":
        missing = [flag for flag, v in (("--stamp", stamp), ("--valid-until", valid_until))
                   if v is None]
        if missing:
            raise ApprovalError(f"{what}: a passed verification carries its stamp serial and "
                                f"valid-until date; give {' and '.join(missing)}")
    elif stamp is not None or valid_until is not None:
        raise ApprovalError(f"{what}: the verification verdict is {run.verdict}; an "
                            "instrument that failed verification gets no stamp or validity")


def _run(s: Any, run_id: int) -> Any:
    from benchctl.store import repository as repo

    run = repo.get_run(s, run_id)
    if run is None:
        raise ApprovalError(f"run {run_id} does not exist")
    return run


def certificate_status(people: dict[str, Any]) -> str:
    """"final" for an approved run, else "draft" (from :func:`run_people`)."""
    return "final" if people.get("approved_at") and people.get("approved_by") else "draft"


def require_final(db: Any, run_id: int) -> dict[str, Any]:
    """The run's people when it may have a final certificate, else :class:`ApprovalError`
    saying what is missing (a draft marked as such is all an unapproved run can produce)."""
    from benchctl.store import repository as repo

    with db.session() as s:
        _run(s, run_id)
        people = dict(repo.run_people(s, run_id))
    if certificate_status(people) == "final":
        return people
    step = ("review (benchctl runs review RUN_ID --by NAME)" if not people["reviewed_by"]
            else "approval (benchctl runs approve RUN_ID --by NAME)")
    raise ApprovalError(f"run {run_id} is not approved: only a draft certificate, marked "
                        f"DRAFT, can be produced; it still needs {step}")
