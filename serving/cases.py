"""The rapid-response case state machine (item 9c). Pure: no I/O, no clock.

``open → under_review → freeze_requested → frozen → release_requested → released``, and
``frozen → closed``

* ``under_review → closed`` ends a review that needs no freeze (an outcome is required);
* ``freeze_requested → under_review`` is the checker rejecting a freeze request;
* ``release_requested → frozen`` is the checker rejecting a release request;
* ``released`` and ``closed`` are terminal and carry an outcome
  (``confirmed_fraud`` / ``confirmed_mule`` / ``false_positive``).

Imposing a restriction (a freeze) and lifting one (a release) each need two people
(maker-checker): whoever approves ``freeze_requested → frozen`` or
``release_requested → released`` cannot be the user who requested it. "User" is a person
(:func:`serving.keys.normalise_user`), not a key: two keys of one person are one user.
"""

from __future__ import annotations

from dataclasses import dataclass

STATUSES = ("open", "under_review", "freeze_requested", "frozen", "release_requested",
            "released", "closed")
TERMINAL = frozenset({"released", "closed"})
OUTCOMES = ("confirmed_fraud", "confirmed_mule", "false_positive")
ROLES = ("viewer", "investigator", "supervisor", "admin")
ROLE_RANK = {role: i for i, role in enumerate(ROLES)}

# (from, to) -> minimum role allowed to make the move
TRANSITIONS: dict[tuple[str, str], str] = {
    ("open", "under_review"): "investigator",
    ("open", "closed"): "investigator",
    ("under_review", "freeze_requested"): "investigator",
    ("under_review", "closed"): "investigator",
    ("freeze_requested", "frozen"): "supervisor",
    ("freeze_requested", "under_review"): "supervisor",
    ("frozen", "release_requested"): "investigator",
    ("frozen", "closed"): "supervisor",
    ("release_requested", "released"): "supervisor",
    ("release_requested", "frozen"): "supervisor",
}
# the approving move of a two-person decision -> the move that requested it
CHECKED = {
    ("freeze_requested", "frozen"): "freeze",
    ("release_requested", "released"): "release",
}
NEEDS_OUTCOME = frozenset({"released", "closed"})

# Moves that the core banking system must hear about (published to ``account.actions``).
ACTIONS = {
    ("under_review", "freeze_requested"): "freeze_requested",
    ("freeze_requested", "frozen"): "freeze_approved",
    ("freeze_requested", "under_review"): "freeze_rejected",
    ("frozen", "release_requested"): "release_requested",
    ("release_requested", "released"): "released",
    ("release_requested", "frozen"): "release_rejected",
    ("frozen", "closed"): "closed_frozen",
}

OUTCOME_LABELS = {
    "confirmed_fraud": "fraud",
    "confirmed_mule": "mule",
    "false_positive": "legit",
}


class TransitionError(Exception):
    """An illegal move. ``status`` is the HTTP status the API answers with."""

    def __init__(self, message: str, status: int, allowed: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.allowed = allowed


@dataclass(frozen=True, slots=True)
class Move:
    """A validated transition: what to record and what to publish."""

    from_status: str
    to_status: str
    outcome: str | None
    action: str | None  # account.actions event name, if any


def allowed_from(status: str) -> list[str]:
    return [to for (frm, to) in TRANSITIONS if frm == status]


def has_role(role: str, minimum: str) -> bool:
    return ROLE_RANK.get(role, -1) >= ROLE_RANK[minimum]


def validate(
    current: str,
    target: str,
    *,
    actor: str,
    role: str,
    outcome: str | None,
    requested_by: str | None,
) -> Move:
    """Check one move; raise :class:`TransitionError` (409 illegal, 403 forbidden, 422 bad).

    ``actor`` is the normalised user; ``requested_by`` the user who made the pending request
    (freeze or release) that this move may approve."""
    allowed = allowed_from(current)
    if target not in STATUSES:
        raise TransitionError(f"unknown status '{target}'", 422, allowed)
    minimum = TRANSITIONS.get((current, target))
    if minimum is None:
        raise TransitionError(
            f"cannot move a case from '{current}' to '{target}'", 409, allowed
        )
    if not has_role(role, minimum):
        raise TransitionError(
            f"moving '{current}' → '{target}' needs the role '{minimum}' (you are '{role}')",
            403, allowed,
        )
    checked = CHECKED.get((current, target))
    if checked is not None and (requested_by is None or actor == requested_by):
        raise TransitionError(
            f"maker-checker: the {checked} must be approved by a person other than "
            f"'{requested_by}', who requested it (another key of the same user does not "
            "count)", 403, allowed,
        )
    if target in NEEDS_OUTCOME:
        if outcome is None:
            raise TransitionError(
                f"moving to '{target}' needs an outcome: {', '.join(OUTCOMES)}", 422, allowed
            )
    elif outcome is not None:
        raise TransitionError(f"an outcome is only recorded when moving to "
                              f"{' or '.join(sorted(NEEDS_OUTCOME))}", 422, allowed)
    if outcome is not None and outcome not in OUTCOMES:
        raise TransitionError(
            f"unknown outcome '{outcome}': one of {', '.join(OUTCOMES)}", 422, allowed
        )
    return Move(current, target, outcome, ACTIONS.get((current, target)))
