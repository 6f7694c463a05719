"""What an ad or messaging platform said about a send, kept with the sync run: a value that
the destinations make, delivery keeps, the store saves and the pages show."""

from __future__ import annotations

from dataclasses import dataclass

MAX_DIAGNOSTICS = 20  # distinct platform diagnostics kept per run


@dataclass(frozen=True, slots=True)
class PlatformReport:
    """What the platform itself said about a send, as a whole (kept with the sync run):
    the rows it says it received and found invalid, its own status for the request or job,
    and its diagnostics (reasons only: never the identifiers it quotes); and, read from an
    ad audience (``audience_report``), the audience's size as the platform reports it (a
    range, bounds as given) and the match rate of the uploads it reported on."""

    received: int | None = None
    invalid: int | None = None
    status: str = ""
    diagnostics: tuple[str, ...] = ()
    audience_lower: int | None = None
    audience_upper: int | None = None
    match_rate: str = ""  # as the platform words it, e.g. "61-70%"

    def merge(self, other: PlatformReport) -> PlatformReport:
        def total(a: int | None, b: int | None) -> int | None:
            return b if a is None else a if b is None else a + b

        def latest(a: int | None, b: int | None) -> int | None:
            return a if b is None else b

        return PlatformReport(
            total(self.received, other.received),
            total(self.invalid, other.invalid),
            other.status or self.status,
            tuple(dict.fromkeys(self.diagnostics + other.diagnostics))[:MAX_DIAGNOSTICS],
            latest(self.audience_lower, other.audience_lower),
            latest(self.audience_upper, other.audience_upper),
            other.match_rate or self.match_rate,
        )

    @property
    def audience_size(self) -> str:
        """The audience size for people: ``1,000–1,200``, ``1,000``, or ""."""
        lo, hi = self.audience_lower, self.audience_upper
        if lo is None and hi is None:
            return ""
        if lo is None or hi is None or lo == hi:
            return f"{lo if hi is None else hi:,}"
        return f"{lo:,}–{hi:,}"
