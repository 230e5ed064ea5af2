"""Persistent object store shared by all vendors: one SQLite table of JSON documents.

Each vendor keeps its objects under its own name, a kind ("image", "pipeline", …), a scope
(namespace, region, project, … whatever partitions names for that vendor) and a name. The
documents are the vendor's own pydantic records dumped to JSON, so the store knows nothing of
any vendor.

The store is synchronous on purpose: every call is a sub-millisecond local SQLite operation,
and calling it without an `await` in between makes each handler's read-check-write atomic with
respect to the other requests on the same event loop, with no locks.

Lookups by name go through the primary key, so a batched describe of k IDs decodes k documents
whatever else is stored; `decoded` counts the documents decoded, for tests that check exactly
that without timing anything.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JSONObject = dict[str, Any]

DB_FILENAME = "emulator.sqlite3"
_SCHEMA_VERSION = 1
# Names per `IN (...)` query: below SQLite's default limit of bound parameters (999 before
# 3.32), with room for the four key columns.
_NAMES_PER_QUERY = 500


@dataclass(frozen=True, slots=True)
class StoredObject:
    vendor: str
    kind: str
    scope: str
    name: str
    doc: JSONObject


class Store:
    """Objects of every vendor, in `state_dir/emulator.sqlite3` or in memory."""

    def __init__(self, state_dir: Path | None) -> None:
        self.decoded = 0
        """Documents decoded from JSON since the store was opened (reads of any kind)."""
        if state_dir is None:
            target = ":memory:"
        else:
            state_dir.mkdir(parents=True, exist_ok=True)
            target = str(state_dir / DB_FILENAME)
        # isolation_level=None: autocommit, so every write is durable the moment it returns
        # (a test may kill the emulator right after a create). check_same_thread=False because
        # the thread helper creates and closes the store from its own loop thread.
        self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL loses nothing when the emulator process dies (a commit is in the
        # WAL file the moment it returns), only on a power cut; FULL's fsync per write made
        # every create wait for the disk.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS objects ("
            " vendor TEXT NOT NULL, kind TEXT NOT NULL, scope TEXT NOT NULL,"
            " name TEXT NOT NULL, doc TEXT NOT NULL,"
            " PRIMARY KEY (vendor, kind, scope, name))"
        )
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version == 0:
            self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        elif version != _SCHEMA_VERSION:
            msg = f"state in {target} has schema version {version}, expected {_SCHEMA_VERSION}"
            raise RuntimeError(msg)

    def close(self) -> None:
        self._db.close()

    def get(self, vendor: str, kind: str, scope: str, name: str) -> JSONObject | None:
        row = self._db.execute(
            "SELECT doc FROM objects WHERE vendor=? AND kind=? AND scope=? AND name=?",
            (vendor, kind, scope, name),
        ).fetchone()
        return None if row is None else self._decode(row[0])

    def get_many(
        self, vendor: str, kind: str, scope: str, names: Iterable[str]
    ) -> list[StoredObject]:
        """The stored objects among `names` in one scope, by name; unknown names are skipped.

        Found through the primary key, so the cost is in the names asked for, not in what
        else is stored."""
        wanted = sorted(set(names))
        found: list[StoredObject] = []
        for start in range(0, len(wanted), _NAMES_PER_QUERY):
            chunk = wanted[start : start + _NAMES_PER_QUERY]
            marks = ",".join("?" * len(chunk))
            # Only "?" marks are formatted into the query; the names are bound parameters.
            query = (
                "SELECT name, doc FROM objects WHERE vendor=? AND kind=? AND scope=?"  # noqa: S608
                f" AND name IN ({marks}) ORDER BY name"
            )
            rows = self._db.execute(query, (vendor, kind, scope, *chunk)).fetchall()
            found.extend(
                StoredObject(vendor=vendor, kind=kind, scope=scope, name=n, doc=self._decode(d))
                for n, d in rows
            )
        return found

    def insert(self, vendor: str, kind: str, scope: str, name: str, doc: JSONObject) -> bool:
        """Add a new object; False (and nothing written) if the name is taken."""
        try:
            self._db.execute(
                "INSERT INTO objects (vendor, kind, scope, name, doc) VALUES (?, ?, ?, ?, ?)",
                (vendor, kind, scope, name, json.dumps(doc)),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def replace(self, vendor: str, kind: str, scope: str, name: str, doc: JSONObject) -> bool:
        """Overwrite an existing object; False if there is none."""
        cursor = self._db.execute(
            "UPDATE objects SET doc=? WHERE vendor=? AND kind=? AND scope=? AND name=?",
            (json.dumps(doc), vendor, kind, scope, name),
        )
        return cursor.rowcount > 0

    def delete(self, vendor: str, kind: str, scope: str, name: str) -> bool:
        cursor = self._db.execute(
            "DELETE FROM objects WHERE vendor=? AND kind=? AND scope=? AND name=?",
            (vendor, kind, scope, name),
        )
        return cursor.rowcount > 0

    def list_objects(
        self, vendor: str, kind: str | None = None, scope: str | None = None
    ) -> list[StoredObject]:
        """A vendor's objects, optionally of one kind and scope, by kind, scope and name."""
        query = "SELECT vendor, kind, scope, name, doc FROM objects WHERE vendor=?"
        params: list[str] = [vendor]
        if kind is not None:
            query += " AND kind=?"
            params.append(kind)
        if scope is not None:
            query += " AND scope=?"
            params.append(scope)
        query += " ORDER BY kind, scope, name"
        return [
            StoredObject(vendor=v, kind=k, scope=s, name=n, doc=self._decode(d))
            for v, k, s, n, d in self._db.execute(query, params).fetchall()
        ]

    def clear(self, vendor: str) -> int:
        """Forget every object of a vendor; returns how many there were."""
        return self._db.execute("DELETE FROM objects WHERE vendor=?", (vendor,)).rowcount

    def _decode(self, text: str) -> JSONObject:
        self.decoded += 1
        value = json.loads(text)
        if not isinstance(value, dict):
            msg = "corrupt emulator state: a stored document is not a JSON object"
            raise RuntimeError(msg)
        return value
