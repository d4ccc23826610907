"""The byte-stream transport every line-oriented driver talks through."""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchctl.errors import InstrumentTimeout


def format_seconds(seconds: float) -> str:
    """``2.0`` -> ``"2.0"``, ``0.3`` -> ``"0.3"``, ``0.25`` -> ``"0.25"`` (for messages)."""
    text = f"{seconds:.1f}"
    return text if float(text) == seconds else f"{seconds:g}"


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

    def resync(self, query: bytes, is_answer: Callable[[bytes], bool], within: float
               ) -> list[bytes]:
        """Get back in step with an instrument that may still answer a command we gave up on.

        Flushing is not enough: a late reply still on its way arrives after the flush and a
        line protocol without sequence numbers would take it for the answer to the next
        command (the same question asked again gets the old value). An instrument answers in
        order, so: send ``query`` (a harmless command whose reply ``is_answer`` recognises and
        no other command's reply can pass for) and drop every line up to its answer.

        Returns the lines dropped. Raises InstrumentTimeout when the answer does not come
        within ``within`` seconds: the caller is still out of step and must resync again
        before its next command (whatever arrived meanwhile is dropped then).
        """
        self.flush_input()
        self.write(query)
        deadline = time.monotonic() + within
        dropped: list[bytes] = []
        while True:
            try:  # a line already received is still taken at the deadline
                line = self.read_line(max(deadline - time.monotonic(), 0.001))
            except InstrumentTimeout as exc:
                raise InstrumentTimeout(
                    self.resource,
                    f"getting back in step after a reply given up on: no answer to {query!r} "
                    f"within {within:g} s ({len(dropped)} late line(s) dropped); the next "
                    "command tries again",
                    raw=exc.raw,
                ) from exc
            if is_answer(line):
                return dropped
            dropped.append(line)

    def half_line_timeout(self, buffer: bytearray, limit: float) -> InstrumentTimeout:
        """The timeout of a read that got nothing, or only part of a line: the part is taken
        out of ``buffer`` and attached to the error (``raw``), never taken as a reply."""
        partial = bytes(buffer)
        buffer.clear()
        seconds = format_seconds(limit)
        if not partial:
            return InstrumentTimeout(self.resource, f"no reply within {seconds} s")
        return InstrumentTimeout(
            self.resource,
            f"incomplete reply within {seconds} s (no {self.read_termination!r} terminator): "
            f"{partial!r}",
            raw=partial,
        )

    def drain_until_quiet(self, quiet: float, within: float) -> list[bytes]:
        """Get back in step with an instrument whose protocol has no answer to resync on.

        When no command's reply can be told from a late one (A&D standard format), the only
        sign that a reply given up on is no longer on its way is silence: drop whatever
        arrives until the line has been quiet for ``quiet`` seconds. A reply later than that
        still passes for the next answer, so ``quiet`` should be at least the instrument's
        own reply time. Returns the lines dropped; raises InstrumentTimeout when the line
        does not fall quiet within ``within`` seconds (the caller stays out of step).
        """
        self.flush_input()
        deadline = time.monotonic() + within
        dropped: list[bytes] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise InstrumentTimeout(
                    self.resource,
                    f"getting back in step after a reply given up on: the line did not fall "
                    f"quiet for {quiet:g} s within {within:g} s ({len(dropped)} late line(s) "
                    "dropped); the next command tries again")
            try:
                dropped.append(self.read_line(min(quiet, left)))
            except InstrumentTimeout as exc:
                if not exc.raw and left >= quiet:
                    return dropped
                if exc.raw:
                    dropped.append(exc.raw)

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
