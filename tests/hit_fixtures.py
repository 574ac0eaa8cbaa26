"""A demo city with fresh (pending) hits, served by the real service, for the hit workflow."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx
import polars as pl

from alpr_workbench.client import Client, connect
from alpr_workbench.demo import build_demo
from alpr_workbench.governance.audit_log import AuditLog
from alpr_workbench.store import Store
from demo_service_fixtures import DemoService, start_demo_service
from service_fixtures import stop_service

#: A network no grant alerts the department to (another agency's).
FOREIGN_NETWORK = "other-agency-net"
FOREIGN_HIT = "hit-of-another-agency"


@dataclass
class HitCity:
    """The running service, the fresh hits, and signed-in clients by role."""

    served: DemoService
    pending: list[str]
    misread: str
    clients: dict[str, Client]
    sessions: dict[str, Path]

    def events(self) -> pl.DataFrame:
        store = Store.open(self.served.service.home)
        with AuditLog.open(store.home, store.keystore) as log:
            return log.events()

    def event(self, event_id: str) -> dict:
        return self.events().filter(pl.col("event_id") == event_id).row(0, named=True)

    def raw(self, role: str) -> tuple[httpx.Client, dict[str, str]]:
        """A plain HTTPS client and the role's bearer header (to send odd bodies)."""
        token = json.loads(self.sessions[role].read_text())["token"]
        return self.served.service.raw(), {"Authorization": f"Bearer {token}"}

    def table(self, name: str) -> pl.DataFrame:
        return Store.open(self.served.service.home).tables.read(name)


def _freshen(home: Path) -> tuple[list[str], str]:
    """Make the hits without outcomes pending again; add a hit of another agency's network."""
    store = Store.open(home)
    hits, outcomes = store.tables.read("hits"), store.tables.read("outcomes")
    free = hits.filter(~pl.col("hit_id").is_in(outcomes["hit_id"].to_list())
                       & (pl.col("network_id") == "bpd-city")
                       & (pl.col("disposition") != "misread"))
    fresh = free.sort(["match_tier", "hit_id"], descending=[False, False]).head(4)
    misread = hits.filter((pl.col("disposition") == "misread")
                          & ~pl.col("hit_id").is_in(outcomes["hit_id"].to_list()))["hit_id"][0]
    pending = fresh["hit_id"].to_list()
    reset = pl.col("hit_id").is_in(pending)
    hits = hits.with_columns(
        pl.when(reset).then(pl.lit("pending")).otherwise(pl.col("disposition"))
        .alias("disposition"),
        pl.when(reset).then(None).otherwise(pl.col("disposition_at")).alias("disposition_at"),
        pl.when(reset).then(None).otherwise(pl.col("disposition_by")).alias("disposition_by"),
    )
    foreign = fresh.head(1).with_columns(pl.lit(FOREIGN_HIT).alias("hit_id"),
                                         pl.lit(FOREIGN_NETWORK).alias("network_id"),
                                         pl.lit("pending").alias("disposition"),
                                         pl.lit(None, dtype=pl.Datetime("us", "UTC"))
                                         .alias("disposition_at"),
                                         pl.lit(None, dtype=pl.String).alias("disposition_by"))
    store.tables.write("hits", pl.concat([hits, foreign.select(hits.columns)]))
    return pending, misread


def start_hit_city(folder: Path, roles: tuple[str, ...]) -> HitCity:
    """Build a demo city, freshen its hits, serve it and sign ``roles`` in."""
    home = folder / "home"
    build_demo(home, days=3, scale=0.05)
    pending, misread = _freshen(home)
    served = start_demo_service(home)
    clients: dict[str, Client] = {}
    sessions: dict[str, Path] = {}
    try:
        for role in roles:
            sessions[role] = folder / f"{role}.json"
            served.sign_in(role, sessions[role])
            clients[role] = connect(session_file=sessions[role])
    except BaseException:
        stop_service(served.service)
        raise
    return HitCity(served, pending, misread, clients, sessions)


def stop_hit_city(city: HitCity) -> None:
    for client in city.clients.values():
        client.close()
    stop_service(city.served.service)
