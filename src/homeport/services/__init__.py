"""Domain services: accounts, collections, items. No HTTP here, no SQL here."""

from __future__ import annotations

from dataclasses import dataclass, field

from homeport.services.accounts import Accounts, Actor, hasher_from_config
from homeport.services.collections import Collections
from homeport.services.guards import Alert, Guards, MassDeletionPolicy, Metrics, SettingSource
from homeport.services.history import History
from homeport.services.items import Items, Limits, Preconditions
from homeport.services.retention import Retention, RetentionPolicy
from homeport.store.core import Store


@dataclass
class Services:
    """The domain, assembled once by `homeport.wiring` and shared by every front end."""

    store: Store
    accounts: Accounts
    collections: Collections
    items: Items
    history: History
    guards: Guards = field(init=False)
    retention: Retention = field(init=False)
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        self.guards = Guards(self.store, metrics=self.metrics)
        self.retention = Retention(self.store, metrics=self.metrics)
        self.items.metrics = self.metrics

    @classmethod
    def build(
        cls,
        store: Store,
        limits: Limits | None = None,
        settings: SettingSource | None = None,
    ) -> Services:
        """Assemble the services; with `settings` (a `Config`), apply its `[guards]` and
        `[retention]` sections."""
        services = cls(
            store, Accounts(store), Collections(store), Items(store, limits), History(store)
        )
        if settings is not None:
            services.configure(settings)
        return services

    def configure(self, settings: SettingSource) -> None:
        """Apply the `[auth]`, `[guards]` and `[retention]` settings (ConfigError if invalid)."""
        self.accounts.hasher = hasher_from_config(settings)
        self.guards.policy = MassDeletionPolicy.from_config(settings)
        self.retention.policy = RetentionPolicy.from_config(settings)

    def close(self) -> None:
        self.store.close()


__all__ = [
    "Accounts",
    "Actor",
    "Alert",
    "Collections",
    "Guards",
    "History",
    "Items",
    "Limits",
    "MassDeletionPolicy",
    "Metrics",
    "Preconditions",
    "Retention",
    "RetentionPolicy",
    "Services",
]
