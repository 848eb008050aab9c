"""Domain services: accounts, collections, items. No HTTP here, no SQL here."""

from __future__ import annotations

from dataclasses import dataclass

from homeport.services.accounts import Accounts, Actor
from homeport.services.collections import Collections
from homeport.services.history import History
from homeport.services.items import Items, Limits, Preconditions
from homeport.store.core import Store


@dataclass
class Services:
    """The domain, assembled once by `homeport.wiring` and shared by every front end."""

    store: Store
    accounts: Accounts
    collections: Collections
    items: Items
    history: History

    @classmethod
    def build(cls, store: Store, limits: Limits | None = None) -> Services:
        return cls(store, Accounts(store), Collections(store), Items(store, limits), History(store))

    def close(self) -> None:
        self.store.close()


__all__ = [
    "Accounts",
    "Actor",
    "Collections",
    "History",
    "Items",
    "Limits",
    "Preconditions",
    "Services",
]
