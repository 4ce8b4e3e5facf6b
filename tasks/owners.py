"""Owner names for people: Salesforce user ids (`005…`) shown as the user's name.

An owner the users frame names shows that name; one it does not know (a files export without
User.csv, a user deleted since) shows its id, so a record never looks unowned when it has an
owner; no owner is "".
"""

from __future__ import annotations

import pandas as pd

from revops.frames import require_columns


def owner_names(owner_ids: pd.Series, users: pd.DataFrame | None) -> pd.Series:
    """The name of each owner id (object dtype, index of `owner_ids`)."""
    ids = owner_ids.astype(object).where(owner_ids.notna(), None)
    if users is None or users.empty:
        named = ids
    else:
        require_columns(users, "users frame", ["user_id", "name"])
        by_id = users.dropna(subset=["name"]).drop_duplicates("user_id")
        named = ids.map(by_id.set_index("user_id")["name"]).astype(object)
        named = named.where(named.notna(), ids)
    return named.where(named.notna(), "").astype(object)
