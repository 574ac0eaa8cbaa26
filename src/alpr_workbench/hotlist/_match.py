"""Which entries alert, and matching batches of reads against them (vectorised joins)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from alpr_workbench.hotlist._common import is_never_alert, require_utc
from alpr_workbench.policy import Policy
from alpr_workbench.schema import load_table

#: Characters a reader confuses, each mapped to the one that stands for both in the match key.
CONFUSABLE: dict[str, str] = {"O": "0", "I": "1", "B": "8", "S": "5", "Z": "2"}
_FROM, _TO = list(CONFUSABLE), list(CONFUSABLE.values())


def confusable_key(plate: pl.Expr) -> pl.Expr:
    """Match key of a plate: every confusable character replaced by its stand-in.

    Two plates share a key exactly when they differ only in confusable characters
    (0/O, 1/I, 8/B, 5/S, 2/Z).

    Examples
    --------
    >>> pl.select(confusable_key(pl.lit("8OB5")).alias("k")).item()
    '8085'
    """
    return plate.str.replace_many(_FROM, _TO)


def _barred_categories(categories: pl.Series, policy: Policy) -> list[str]:
    return [c for c in categories.unique().to_list() if c is not None and is_never_alert(c, policy)]


def _alerting(entries: pl.DataFrame, hotlists: pl.DataFrame, policy: Policy) -> pl.LazyFrame:
    """Entries that may alert at some time, with ``source`` and the window ``[from, until)``.

    Dropped outright: entries of unknown lists, never-alert categories, and entries of custom
    lists lacking an owner, case number, reason or expiry (docs/policy.md#r4: fail closed).
    """
    lists = hotlists.lazy().select(
        "hotlist_id",
        pl.col("source").alias("hotlist_source"),
        pl.col("expires_at").alias("_list_until"),
        (
            (pl.col("source") != "custom")
            | (
                pl.col("owner_user_id").is_not_null()
                & pl.col("case_number").is_not_null()
                & pl.col("reason").is_not_null()
                & pl.col("expires_at").is_not_null()
            )
        ).alias("_list_ok"),
    )
    barred = _barred_categories(entries["category"], policy)
    return (
        entries.lazy()
        .filter(~pl.col("category").is_in(barred))
        .join(lists, on="hotlist_id", how="inner")
        .filter(pl.col("_list_ok"))
        .with_columns(
            pl.col("added_at").alias("_from"),
            pl.min_horizontal("expires_at", "_list_until").alias("_until"),
        )
    )


def active_entries(
    entries: pl.DataFrame, hotlists: pl.DataFrame, *, at: dt.datetime, policy: Policy
) -> pl.DataFrame:
    """Entries that alert at time ``at``.

    An entry alerts from its ``added_at`` until the earlier of its own and its list's
    ``expires_at`` (a missing expiry sets no limit: feeds are refreshed daily), unless its
    category must never alert or it sits on a custom list without owner, case number,
    reason or expiry.

    Parameters
    ----------
    entries
        ``hotlist_entries`` rows.
    hotlists
        ``hotlists`` rows.
    at
        The moment (UTC).
    policy
        Policy giving the never-alert categories.

    Returns
    -------
    polars.DataFrame
        The alerting rows of ``entries``, same columns.

    Examples
    --------
    >>> import datetime as dt
    >>> from alpr_workbench.policy import load_policy
    >>> from alpr_workbench.schema import validate_frame
    >>> t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> lists = validate_frame("hotlists", pl.DataFrame({"hotlist_id": ["ca-svs"],
    ...     "name": ["SVS"], "source": ["state_stolen"], "created_at": [t0]}))
    >>> ents = validate_frame("hotlist_entries", pl.DataFrame({"entry_id": ["e1", "e2"],
    ...     "hotlist_id": "ca-svs", "plate": ["7ABC123", "8XYZ999"],
    ...     "category": ["stolen_vehicle", "immigration_violator"], "priority": [2, 2],
    ...     "added_by": "feed", "added_at": [t0, t0],
    ...     "expires_at": [t0 + dt.timedelta(days=30)] * 2}))
    >>> policy = load_policy()
    >>> day1 = active_entries(ents, lists, at=t0 + dt.timedelta(days=1), policy=policy)
    >>> day1["entry_id"].to_list()
    ['e1']
    >>> active_entries(ents, lists, at=t0 + dt.timedelta(days=31), policy=policy).height
    0
    """
    at = require_utc(at, "at")
    return (
        _alerting(entries, hotlists, policy)
        .filter(
            (pl.col("_from") <= at) & (pl.col("_until").is_null() | (pl.lit(at) < pl.col("_until")))
        )
        .select(entries.columns)
        .collect()
    )


_HIT_SCHEMA = {f.name: f.polars_dtype for f in load_table("hits").fields}


def match_reads(
    reads: pl.DataFrame, entries: pl.DataFrame, hotlists: pl.DataFrame, *, policy: Policy
) -> pl.DataFrame:
    """Match a batch of reads against the hotlist entries alerting when each read was made.

    Two tiers: ``exact`` (the read's text equals the listed plate) and ``confusable`` (they
    differ only in confusable characters, see :data:`CONFUSABLE`; needs visual
    confirmation). The issuing state is not compared: reads often lack it, and a hit on the
    right text in the wrong state is a disposition (``wrong_state``) a person records after
    looking at the image. An entry alerts for a read when ``added_at <= captured_at`` and
    the read precedes the entry's and its list's expiry; never-alert categories and custom
    lists without case, reason or expiry never alert (see :func:`active_entries`).

    Parameters
    ----------
    reads
        ``reads`` rows (needs ``read_id``, ``camera_id``, ``network_id``, ``captured_at``,
        ``plate``).
    entries, hotlists
        ``hotlist_entries`` and ``hotlists`` rows.
    policy
        Policy giving the never-alert categories.

    Returns
    -------
    polars.DataFrame
        Frame of the ``hits`` schema, one row per (read, entry) pair, disposition
        ``pending``, ``hit_id = "hit-<read_id>-<entry_id>"``, ordered by ``hit_id``.

    Examples
    --------
    >>> import datetime as dt
    >>> from alpr_workbench.policy import load_policy
    >>> from alpr_workbench.schema import validate_frame
    >>> t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> lists = validate_frame("hotlists", pl.DataFrame({"hotlist_id": ["ca-svs"],
    ...     "name": ["SVS"], "source": ["state_stolen"], "created_at": [t0]}))
    >>> ents = validate_frame("hotlist_entries", pl.DataFrame({"entry_id": ["e1"],
    ...     "hotlist_id": "ca-svs", "plate": ["7ABC123"], "category": ["stolen_vehicle"],
    ...     "priority": [2], "added_by": "feed", "added_at": [t0]}))
    >>> reads = pl.DataFrame({"read_id": ["r1", "r2", "r3"], "camera_id": "c1",
    ...     "network_id": "bpd-city", "captured_at": [t0 + dt.timedelta(hours=1)] * 3,
    ...     "plate": ["7ABC123", "7A8C123", "7ABC124"]})
    >>> match_reads(reads, ents, lists, policy=load_policy()).select("read_id", "match_tier").rows()
    [('r1', 'exact'), ('r2', 'confusable')]
    """
    ent = _alerting(entries, hotlists, policy).select(
        "entry_id",
        "hotlist_id",
        "hotlist_source",
        pl.col("plate").alias("listed_plate"),
        "priority",
        "_from",
        "_until",
        confusable_key(pl.col("plate")).alias("_key"),
    )
    hits = (
        reads.lazy()
        .select(
            "read_id",
            "camera_id",
            "network_id",
            "captured_at",
            pl.col("plate").alias("read_plate"),
            confusable_key(pl.col("plate")).alias("_key"),
        )
        .join(ent, on="_key", how="inner")
        .filter(
            (pl.col("captured_at") >= pl.col("_from"))
            & (pl.col("_until").is_null() | (pl.col("captured_at") < pl.col("_until")))
        )
        .with_columns(
            pl.concat_str(pl.lit("hit-"), "read_id", pl.lit("-"), "entry_id").alias("hit_id"),
            pl.when(pl.col("read_plate") == pl.col("listed_plate"))
            .then(pl.lit("exact"))
            .otherwise(pl.lit("confusable"))
            .alias("match_tier"),
            pl.lit("pending").alias("disposition"),
        )
        .sort("hit_id")
        .select(
            pl.col(name).cast(dtype) if name in _COMPUTED else pl.lit(None, dtype).alias(name)
            for name, dtype in _HIT_SCHEMA.items()
        )
    )
    return hits.collect()


_COMPUTED = frozenset(_HIT_SCHEMA) - {"disposition_at", "disposition_by"}
