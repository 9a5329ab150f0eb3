"""Who is making the changes of a unit of work, for the customers' history (API.md 12).

The face that authenticates a request says who its caller is with act_as(); the database
session keeps it in its info, which dies with the session at the end of the request. A
session no face spoke for (the CLI, a worker, housekeeping) acts for the system.
"""

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from freshcom_customers.extensions import db

_KEY = "actors.current"


@dataclass(frozen=True)
class Actor:
    kind: str  # staff, client, customer, system or anonymous (models.ACTORS)
    id: uuid.UUID | None = None  # the staff user's or the client's; a customer is the row's own


SYSTEM = Actor("system")
CUSTOMER = Actor("customer")
ANONYMOUS = Actor("anonymous")


def act_as(actor: Actor) -> None:
    """Make actor the author of what the request's session writes from now on."""
    db.session.info[_KEY] = actor


def forget() -> None:
    """No actor from now on: the system's, until a face says who acts. A request that has not
    opened a session yet has none to forget, and opens none here (a route without the
    database stays without it)."""
    if db.session.registry.has():
        db.session.info.pop(_KEY, None)


def current(session: Session | None = None) -> Actor:
    return (session if session is not None else db.session).info.get(_KEY, SYSTEM)
