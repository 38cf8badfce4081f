"""Job views from the events alone: the fold each store runs at every append (`contracts.job_view.apply`), run over
the whole history at once. Used to rebuild the views when they were lost, damaged, or made by an older version that
did not keep a field the code now reads (a completed job's `final_ref`, which links are signed from at each read)."""

from __future__ import annotations

from contracts.events import AnyEvent
from contracts.job_view import JobView, apply


class ViewFold:
    """Feed every event in the order the store recorded them; get each job's view and its row position."""

    def __init__(self) -> None:
        self._views: dict[str, tuple[JobView, int]] = {}
        self.events = 0

    def add(self, event: AnyEvent, seq: int, at: float, position: int) -> None:
        self.events += 1
        current = self._views.get(event.job_id)
        view = apply(current[0] if current else None, event, seq, at)
        if view is not None:
            # A job's row keeps the position of the event that made its view, as at append: lists keep their order.
            self._views[event.job_id] = (view, current[1] if current else position)

    def views(self) -> list[tuple[JobView, int]]:
        """(view, position) per job, in position order."""
        return sorted(self._views.values(), key=lambda item: item[1])
