"""Typed request/response models of the API (they are also its OpenAPI documentation)."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from serving.cases import OUTCOMES, ROLES, STATUSES
from serving.typology import TYPOLOGIES

Status = Literal["open", "under_review", "freeze_requested", "frozen", "release_requested",
                 "released", "closed"]
CaseStatusFilter = Literal["none", "open", "under_review", "freeze_requested", "frozen",
                           "release_requested", "released", "closed"]
Outcome = Literal["confirmed_fraud", "confirmed_mule", "false_positive"]
AccountType = Literal["personal", "business", "unknown"]
Typology = Literal["account_takeover", "shell_business", "mule", "scam_victim",
                   "unusual_activity"]
Role = Literal["viewer", "investigator", "supervisor", "admin"]

ID_LEN = 1024  # the event contract's longest identifier (features.events.MAX_TEXT)
# the decoder counts an id's characters before NFKC, which turns one character into up to 18
# (U+FDFA): the longest id it can store, which the API must find too
ID_LEN_NORMALISED = ID_LEN * 18
# row ids (case ids, audit ids) are INTEGER columns: 32 bits on PostgreSQL (a larger value in
# a query is an error there, not an empty answer)
ROW_ID_MAX = 2**31 - 1


def no_nul(value: str) -> str:
    """Refuse a NUL character: PostgreSQL's text cannot hold one (the query raised, a 500), and
    no account, user or key the case store holds can contain one (the projection dead-letters
    a record whose id has one, on PostgreSQL)."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character (\\u0000)")
    return value


NoNul = AfterValidator(no_nul)


def normalise_account(value: str) -> str:
    """An account id exactly as the event decoder makes it (``features.events._account_id``):
    refused if blank or longer than ID_LEN characters (counted before normalising, as the
    decoder counts), then Unicode NFKC (full-width ``３８９`` is ``389``). Surrounding spaces
    are kept, as the decoder keeps them: ``" 389"`` is an account of its own, and every id the
    decoder accepts must be found by the API. A longer id that NFKC may have made so
    (non-ASCII, already NFKC, at most ID_LEN_NORMALISED) is taken as it is: the decoder stores
    such ids, and an id read from the API must find itself. ValueError says why an id is
    refused."""
    if not value.strip():
        raise ValueError("must not be blank")
    no_nul(value)
    if len(value) > ID_LEN:
        if len(value) > ID_LEN_NORMALISED or value.isascii() or \
                not unicodedata.is_normalized("NFKC", value):
            raise ValueError(f"longer than {ID_LEN} characters")
        return value
    return value if value.isascii() else unicodedata.normalize("NFKC", value)


# every account id the API takes (path, query or body) goes through this one normalisation
AccountId = Annotated[str, AfterValidator(normalise_account)]
ACCOUNT_ID_DOC = (f"An account id, compared as the event decoder stores it: Unicode NFKC, "
                  f"spaces kept, at most {ID_LEN} characters before normalising")


assert set(Status.__args__) == set(STATUSES)  # type: ignore[attr-defined]
assert set(Outcome.__args__) == set(OUTCOMES)  # type: ignore[attr-defined]
assert set(Typology.__args__) == set(TYPOLOGIES)  # type: ignore[attr-defined]
assert set(Role.__args__) == set(ROLES)  # type: ignore[attr-defined]


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `invalid_cursor`")
    message: str = Field(description="What is wrong, in plain words")
    details: Any = Field(None, description="Per-field problems, allowed transitions, …")


class ErrorResponse(BaseModel):
    error: ErrorDetail
    request_id: str = Field(description="Also in the `X-Request-ID` response header")


class RiskSummary(BaseModel):
    score: float = Field(description="Current risk, what the list is ranked by: peak_score "
                                     "halved for every 7 days without activity (payment or "
                                     "login) up to the store's newest activity")
    peak_score: float = Field(description="Highest payment score in the 7 days (event time) up "
                                          "to the account's latest scored payment")
    prev_score: float | None = Field(description="Highest score in the 7 days before that")
    trend: float | None = Field(description="peak_score − prev_score (positive = rising)")
    top_reasons: list[str] = Field(description="Readable reasons of the riskiest payment")
    typology: Typology
    last_activity: str = Field(description="RFC 3339, event time")
    foreign_login: bool = Field(description="Successful logins from outside the KYC country "
                                            "in the 30 days up to the latest login")
    foreign_countries: list[str]
    case_id: int | None
    case_status: CaseStatusFilter


class HighRiskItem(RiskSummary):
    account_id: str
    type: AccountType


class HighRiskPage(BaseModel):
    items: list[HighRiskItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; "
                                                "null on the last page")
    limit: int


class Reason(BaseModel):
    feature: str
    value: float | None = None
    contribution: float | None = None
    text: str | None = None


class ScoredPayment(BaseModel):
    event_id: str
    ts: str
    score: float
    decision: str
    reasons: list[Reason]
    model_version: str
    direction: str
    amount: float
    currency: str
    counterparty_account: str
    counterparty_bank: str
    channel: str
    country: str | None
    ip: str | None
    device_id: str | None
    description: str | None
    on_call: bool | None = Field(description="The bank's app reported a phone call active "
                                             "during the transfer; null = not reported (no "
                                             "app session), which is not false")
    remote_access: bool | None = Field(description="The bank's app reported a remote-access "
                                                   "or screen-sharing app running during the "
                                                   "transfer; null = not reported")
    features: dict[str, float | None]


class LoginOut(BaseModel):
    event_id: str
    ts: str
    success: bool
    ip: str
    country: str
    device_id: str
    channel: str


class LoginSummary(BaseModel):
    countries: list[str]
    devices: list[str]
    ips: list[str]


class Counterparty(BaseModel):
    counterparty_account: str
    counterparty_bank: str
    direction: str
    count: int
    total_amount: float
    max_score: float
    last_ts: str


class TimelinePoint(BaseModel):
    ts: str
    score: float
    decision: str


class Profile(BaseModel):
    account_id: str
    customer_id: str
    type: str
    opened_at: str
    kyc_country: str
    birth_year: int | None
    registered_at: str | None
    segment: str | None


class CaseEvent(BaseModel):
    from_status: Status | None
    to_status: Status
    outcome: Outcome | None
    user: str = Field(description="The person who made the move (normalised user name)")
    key: str | None = Field(description="The name of the API key they used (null for moves "
                                        "recorded before users existed)")
    actor: str = Field(description="Same as `user` (kept for older clients)")
    role: Role
    reason: str
    at: str


class CaseOut(BaseModel):
    case_id: int
    account_id: str
    status: Status
    outcome: Outcome | None
    typology: str | None
    opened_by: str
    opened_at: str
    updated_at: str
    freeze_requested_by: str | None = Field(description="User who requested the freeze")
    release_requested_by: str | None = Field(description="User who requested the release")
    decided_at: str | None
    allowed_transitions: list[Status]
    history: list[CaseEvent]


class AccountDetail(BaseModel):
    account_id: str
    profile: Profile | None = Field(description="Null if the account master data is unknown")
    risk: RiskSummary | None
    timeline: list[TimelinePoint] = Field(description="Scores over time, oldest first")
    payments: list[ScoredPayment] = Field(description="Most recent scored payments")
    logins: list[LoginOut] = Field(description="Most recent logins")
    login_summary: LoginSummary
    counterparties: list[Counterparty]
    cases: list[CaseOut] = Field(description="Cases and their decision history")


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: AccountId = Field(min_length=1, max_length=ID_LEN_NORMALISED,
                                  description=ACCOUNT_ID_DOC)
    reason: Annotated[str, NoNul] = Field("", max_length=2000,
                                         description="Why the case is opened")


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Status = Field(description="Target status")
    reason: Annotated[str, NoNul] = Field("", max_length=2000)
    outcome: Outcome | None = Field(None, description="Required when moving to released/closed")
    typology: Typology | None = Field(None, description="Investigator's typology, if known")


class TransitionOut(BaseModel):
    case: CaseOut
    action: str | None = Field(description="Event published to `account.actions`, if any")
    action_published: bool | None = Field(description="False if the broker did not confirm")
    label_published: bool | None


class CasePage(BaseModel):
    items: list[CaseOut]
    next_cursor: str | None
    limit: int


class AuditEntry(BaseModel):
    id: int
    at: str
    actor: str = Field(description="The user (a person)")
    key: str | None = Field(description="The API key's name")
    role: Role
    action: str
    target: str
    request_id: str = Field(description="Generated by the server (the `X-Request-ID` "
                                        "response header)")
    client_request_id: str | None = Field(description="The client's own `X-Request-ID`, as "
                                                      "sent (escaped); not trusted")
    details: dict[str, Any] | None = Field(description="Filters, row counts, outcome")


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None
    limit: int


class ModelInfo(BaseModel):
    version: str
    metrics: dict[str, Any]
    thresholds: dict[str, Any]
    updated_at: str


class Health(BaseModel):
    status: Literal["ok"]


class ProjectionState(BaseModel):
    state: Literal["off", "starting", "running", "kafka_unavailable", "store_unavailable",
                   "stopped"]
    lag: int | None = Field(None, description="records not yet in the case store")


class Ready(BaseModel):
    status: Literal["ready"]
    store_version: int
    projection: ProjectionState


class ReportRow(BaseModel):
    account_id: str
    customer_id: str | None
    account_type: str
    opened_at: str | None
    risk_score: float
    typology: str | None
    credits_count: int
    credits_sum: float
    debits_count: int
    debits_sum: float
    distinct_senders: int
    foreign_login_countries: list[str]
    foreign_login_ips: list[str]
    key_payments: list[str]
    case_id: int | None
    case_status: str
    outcome: str | None
    decisions: list[str]
    first_activity: str
    last_activity: str


class Report(BaseModel):
    from_: str = Field(alias="from")
    to: str
    min_score: float
    generated_at: str
    columns: list[str]
    rows: list[ReportRow]
