"""Pacing: the deliverer yields the cores to recording while changes arrive in a burst."""

from dataclasses import dataclass


@dataclass(slots=True)
class Pace:
    """Deliveries yield to recording. While changes are committed faster than `limit` a second
    (a burst of syncs; the rate measured over `window` seconds or more), the deliverer holds its
    rounds back, for at most `longest` seconds; then it drains: it runs rounds whatever the rate
    until one finds nothing to do (`drained`), and only then may hold again. So a burst keeps
    the cores for recording, deliveries wait at most `longest` seconds plus the drain, and a
    steady high rate cannot starve them. `limit` 0 never holds."""

    limit: float
    longest: float
    window: float = 1.0
    head: int | None = None
    at: float = 0.0
    busy: bool = False
    since: float | None = None
    draining: bool = False

    def hold(self, *, head: int, now: float) -> bool:
        """Whether to skip this round, given the feed's last change id and a monotonic time."""
        if self.head is None or now - self.at >= self.window:
            if self.head is not None:
                self.busy = (head - self.head) / (now - self.at) > self.limit > 0
            self.head, self.at = head, now
        if not self.busy or self.draining:
            self.since = None
            return False
        if self.since is None:
            self.since = now
        if now - self.since < self.longest:
            return True
        self.since, self.draining = None, True
        return False

    def drained(self) -> None:
        """A round found nothing to send: the backlog is gone, holding may start again."""
        self.draining = False
