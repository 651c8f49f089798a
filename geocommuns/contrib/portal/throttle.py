"""geocommuns.contrib.portal.throttle: failed sign-ins slowed down, per account and per address.

Each failure is counted for the account named and for the client's address. After a
few free attempts, the next one must wait, twice as long after each new failure (up to
:data:`MAX_WAIT`); a successful sign-in clears the account's count. Guessing a token
from one address, or one account's token from many, becomes hopeless; nobody is locked
out for good. The counts live in the space's SQLite file, shared by every worker.
"""

from __future__ import annotations

import datetime as dt
from contextlib import closing
from pathlib import Path

from geocommuns.contrib.portal.sessions import connect, now

#: Failures allowed before waiting starts: per account, per client address.
FREE_PER_ACCOUNT = 3
FREE_PER_ADDRESS = 10
#: Longest wait between two attempts, in seconds.
MAX_WAIT = 900
#: Failures older than this are forgotten.
FORGET_AFTER = dt.timedelta(hours=24)


def wait_for(failures: int, free: int) -> int:
    """Seconds to wait after the last of ``failures`` failures (0 while attempts are free)."""
    if failures < free:
        return 0
    return int(min(2 ** (failures - free), MAX_WAIT))


class SignInThrottle:
    """Counts of failed sign-ins kept in ``path`` (SQLite)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _keys(self, account: str, address: str) -> list[tuple[str, int]]:
        return [(f"account:{account.strip().lower()}", FREE_PER_ACCOUNT),
                (f"address:{address}", FREE_PER_ADDRESS)]

    def wait(self, account: str, address: str) -> int:
        """Seconds before another attempt for this account from this address (0: now)."""
        at = now()
        longest = 0
        with closing(connect(self.path)) as con:
            for key, free in self._keys(account, address):
                row = con.execute(
                    "SELECT failures, last_at FROM signin_failures WHERE key = ?", [key]
                ).fetchone()
                if row is None:
                    continue
                last = dt.datetime.fromisoformat(row[1])
                if last + FORGET_AFTER <= at:
                    continue
                until = last + dt.timedelta(seconds=wait_for(int(row[0]), free))
                longest = max(longest, int((until - at).total_seconds()))
        return max(longest, 0)

    def failed(self, account: str, address: str) -> None:
        """Count a failed attempt for the account and the address."""
        at = now().isoformat()
        with closing(connect(self.path)) as con:
            for key, _ in self._keys(account, address):
                con.execute(
                    "INSERT INTO signin_failures VALUES (?, 1, ?) ON CONFLICT(key) DO UPDATE "
                    "SET failures = failures + 1, last_at = excluded.last_at",
                    [key, at],
                )

    def succeeded(self, account: str) -> None:
        """Forget the account's failures (its owner signed in)."""
        with closing(connect(self.path)) as con:
            con.execute(
                "DELETE FROM signin_failures WHERE key = ?", [f"account:{account.strip().lower()}"]
            )
