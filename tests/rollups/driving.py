"""What the reference tests' drivers send when the service refuses a step the way it tells a
user to change it: the histories they draw stay histories a user could have recorded."""

from typing import Any

import httpx


def accepted_instead(response: httpx.Response, body: dict[str, Any]) -> dict[str, Any] | None:
    """`body` sent again as an acceptance when the service refused it as a partial acceptance
    weighed at or above what the batch declared with no part stated, which refuses nothing
    (`custody.remainders.refused_kg`: a 422 naming `weight_kg`, "accept the batch" or
    "correct the outcome to accepted"); else None. The refused post changed nothing, so the
    same `client_event_id` records it."""
    if response.status_code != 422:
        return None
    problem = response.json()
    if problem.get("field") != "weight_kg" or "refuses nothing" not in problem.get("detail", ""):
        return None
    again = {name: value for name, value in body.items() if name not in ("reason", "refused_kg")}
    return again | {"outcome": "accepted"}
