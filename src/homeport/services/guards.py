"""Guards against the common ways data is lost by accident: mass deletions by a sync
client, edits silently discarded in conflicts, and unbounded growth (retention).

(Interface agreed between the history UI and the guards; bodies are being written.)
"""

from __future__ import annotations

from dataclasses import dataclass

from homeport.services.accounts import Actor
from homeport.store.core import Store


@dataclass(frozen=True)
class Alert:
    """A mass deletion: one client deleted much of a collection in a short window."""

    id: int
    at_us: int
    owner: str
    collection_id: int
    collection_path: str
    user: str
    client: str
    deleted: int  # items deleted in the window
    collection_size: int  # items the collection held before the window
    first_seq: int  # the first deletion of the burst
    rollback_command: str  # the exact command that undoes it
    acknowledged: bool = False


class Guards:
    def __init__(self, store: Store) -> None:
        self.store = store

    def alerts(
        self, actor: Actor, owner: str | None = None, include_acknowledged: bool = False
    ) -> list[Alert]:
        """Alerts, newest first: the actor's own, or (admin, owner=None) everyone's."""
        raise NotImplementedError

    def acknowledge(self, actor: Actor, alert_id: int) -> None:
        raise NotImplementedError
