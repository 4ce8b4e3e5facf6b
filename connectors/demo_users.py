"""The demo book's Salesforce users: a name for every owner, and one who left the company.

`DEMO_USERS` covers `demo_common.OWNERS`; `INACTIVE_OWNER` (IsActive false) owns the hygiene
plant "Zenith Unlinked" (connectors.demo_health), the `inactive_owner` check's demo case.
"""

from __future__ import annotations

import pandas as pd

from revops.connectors.demo_common import OWNERS
from revops.frames import validate_frame

INACTIVE_OWNER = "005DEMO00000000099"
_NAMES = [
    "Avery Chen",
    "Jordan Patel",
    "Sam Okafor",
    "Riley Novak",
    "Morgan Silva",
    "Casey Lindqvist",
    "Taylor Haddad",
    "Jamie Moreau",
]


def demo_users() -> pd.DataFrame:
    """Canonical `users`: the eight demo owners (active) and the inactive one."""
    names = [*_NAMES, "Drew Former"]
    ids = [*OWNERS, INACTIVE_OWNER]
    frame = pd.DataFrame(
        {
            "user_id": pd.Series(ids, dtype="str"),
            "name": pd.Series(names, dtype="str"),
            "is_active": [True] * len(OWNERS) + [False],
            "email": pd.Series(
                [f"{n.split()[0].lower()}@demo.example" for n in names], dtype="str"
            ),
        }
    )
    return validate_frame("users", frame)
