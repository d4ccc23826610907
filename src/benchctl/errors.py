"""The exceptions benchctl raises on purpose.

Every error a technician can meet is one of these, so the command line can print one clear
line (what, where) plus the detail, and a run can decide whether to retry, pause or stop.
"""

from __future__ import annotations


class BenchctlError(Exception):
    """Base of every error benchctl reports to a person."""

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class ConfigError(BenchctlError):
    """A bench, DUT or reference file is wrong: names the file, the key, the expectation."""

    def __init__(self, file: str, key: str, expected: str, *, got: object = None) -> None:
        where = f"{file}: [{key}]" if key else file
        msg = f"{where}: expected {expected}"
        if got is not None:
            msg += f", got {got!r}"
        super().__init__(msg)
        self.file = file
        self.key = key
        self.expected = expected
        self.got = got


class DutParameterError(BenchctlError):
    """A device-under-test parameter is impossible (e.g. breaks the R76 class rules)."""


class InstrumentError(BenchctlError):
    """Something went wrong talking to an instrument; always names the resource."""

    #: Transient faults may be retried by the caller (bounded); others need a person.
    transient: bool = False

    def __init__(self, resource: str, message: str, *, raw: bytes | None = None) -> None:
        super().__init__(f"{resource}: {message}")
        self.resource = resource
        self.raw = raw


class InstrumentTimeout(InstrumentError):
    """No complete reply within the timeout (silence, or a half line)."""

    transient = True


class InstrumentConnectionError(InstrumentError):
    """The resource could not be opened, or the connection dropped."""

    transient = True


class ProtocolError(InstrumentError):
    """The reply was garbled, truncated or not what the protocol allows."""

    transient = True


class InstrumentBusy(InstrumentError):
    """The instrument said it cannot execute now (MT-SICS ``I``), e.g. no stability in time."""

    transient = True


class InstrumentCommandError(InstrumentError):
    """The instrument rejected the command (syntax, logical, bad parameter)."""


class OverloadError(InstrumentError):
    """The load is above the instrument's range (MT-SICS ``+``, A&D ``OL``)."""


class UnderloadError(InstrumentError):
    """The load is below the zero range (MT-SICS ``-``)."""


class OperatorAbort(BenchctlError):
    """The operator chose to abort the run."""


class RunAborted(BenchctlError):
    """The run was asked to abort; it stops at the next safe point and can be resumed."""


class StoreError(BenchctlError):
    """The database refused or lost something."""
