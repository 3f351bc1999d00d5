"""When and how often a ``Client`` reconnects after a lost or failed connection."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReconnectPolicy"]


@dataclass(frozen=True)
class ReconnectPolicy:
    """Exponential backoff: retry ``n`` (0-based) waits ``min(max_delay_s, initial * factor**n)``.

    ``max_attempts`` bounds the retries after one loss (``None`` = retry until ``close()``).
    """

    initial_delay_s: float = 0.1
    max_delay_s: float = 10.0
    factor: float = 2.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.initial_delay_s <= self.max_delay_s:
            raise ValueError("need 0 <= initial_delay_s <= max_delay_s")
        if self.factor < 1:
            raise ValueError("factor must be >= 1")
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ValueError("max_attempts must be >= 0 or None")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (0 = the first retry)."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        delay = self.initial_delay_s * self.factor ** min(attempt, 64)
        return float(min(self.max_delay_s, delay))

    def allows(self, attempt: int) -> bool:
        """True if retry ``attempt`` (0-based) may still be made."""
        return self.max_attempts is None or attempt < self.max_attempts
