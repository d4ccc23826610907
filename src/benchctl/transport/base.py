"""The byte-stream transport every line-oriented driver talks through."""

from __future__ import annotations

import abc
from dataclasses import dataclass


@dataclass(frozen=True)
class SerialSettings:
    """Serial line settings; bench.toml may give any of them per instrument."""

    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"  # N, E, O, M, S
    stopbits: float = 1
    rtscts: bool = False
    xonxoff: bool = False


class Transport(abc.ABC):
    """A line-oriented connection to one instrument.

    Every read has a timeout and every error names the resource, so a technician reading an
    error knows which cable to look at.
    """

    resource: str
    timeout: float
    read_termination: bytes
    write_termination: bytes

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Send ``data`` followed by the write termination."""

    @abc.abstractmethod
    def read_line(self, timeout: float | None = None) -> bytes:
        """One reply line without its termination.

        Raises InstrumentTimeout when nothing, or only part of a line, arrives in time; the
        partial bytes are attached to the exception (``raw``) and discarded.
        """

    def query(self, data: bytes, timeout: float | None = None) -> bytes:
        self.write(data)
        return self.read_line(timeout)

    @abc.abstractmethod
    def flush_input(self) -> None:
        """Discard anything already received (e.g. a power-up line)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
