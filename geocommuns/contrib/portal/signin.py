"""geocommuns.contrib.portal.signin: signing in to the technician web space.

A technician signs in with their user name (``geocommuns users add NAME``) and the token
they were given then (``gct_…``): the token is their password, checked against its
scrypt hash in the living store like any API request's. No other password is stored. A
wrong pair counts as a failure for the account and the address
(:mod:`.throttle`); while a wait is due, the token is not even checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from geocommuns.contrib.auth import Principal, authenticate
from geocommuns.contrib.layerstore import LivingStore
from geocommuns.contrib.portal.throttle import SignInThrottle
from geocommuns.errors import GeocommunsError


class SignInRefused(GeocommunsError):
    """A sign-in attempt failed; ``wait`` is how long before the next may be tried."""

    def __init__(self, message: str, wait: int = 0) -> None:
        super().__init__(message)
        self.wait = wait


@dataclass(frozen=True)
class SignedIn:
    """Who signed in."""

    principal: Principal


def sign_in(
    store: LivingStore, throttle: SignInThrottle, *, name: str, token: str, address: str
) -> SignedIn:
    """Check a user name and token, slowing down repeated failures.

    Parameters
    ----------
    store
        The living store holding the users.
    throttle
        The failure counts.
    name
        The user name typed.
    token
        The token typed (``gct_…``).
    address
        The client's address (for the per-address count).

    Returns
    -------
    SignedIn
        The user.

    Raises
    ------
    SignInRefused
        When a wait is due, or the name and token do not match an active user (the
        message never says which of the two was wrong).
    """
    name = name.strip()
    wait = throttle.wait(name, address)
    if wait > 0:
        msg = f"Trop d'essais : réessayez dans {wait} s."
        raise SignInRefused(msg, wait)
    principal = None
    if name and token.strip():
        with store.reading() as db:
            principal = authenticate(db, token.strip())
    if principal is None or principal.name != name or principal.role == "reader":
        throttle.failed(name, address)
        msg = "Nom d'utilisateur ou jeton incorrect (ou compte révoqué, expiré, ou en lecture seule)."
        raise SignInRefused(msg, throttle.wait(name, address))
    throttle.succeeded(name)
    return SignedIn(principal)
