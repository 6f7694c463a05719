"""The person graph on a store transaction: ``tactful.core.graph.PersonGraph`` given the
store's identifiers (``preload``), person ids (``resolve``) and written back (``flush``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from tactful.core.graph import IdentityPlan, PersonGraph, Unresolvable
from tactful.store.base import FoldTx, IdentKey


class BatchIdentity(PersonGraph):
    """Resolves events to persons inside one transaction, merging where the rules say."""

    def __init__(
        self,
        tx: FoldTx,
        salt: str,
        plan: IdentityPlan,
        on_merge: Callable[[str, str, datetime], None],
    ) -> None:
        super().__init__(salt, on_merge)
        self.tx = tx
        self.plan = plan

    def preload(self, keys: Sequence[IdentKey]) -> None:
        self.known(self.tx.lookup_identifiers(k for k in keys if k not in self.idmap))

    def resolve(self, joining: list[IdentKey], others: list[IdentKey], at: datetime) -> str:
        if joining and joining[0][0] == "person_id":
            found = self.tx.resolve_person_id(joining[0][1])
            if found is None:
                raise Unresolvable("unknown person id")
            return self.find(found)
        return super().resolve(joining, others, at)

    def flush(self) -> None:
        self.tx.add_identifiers(self.take_links())
