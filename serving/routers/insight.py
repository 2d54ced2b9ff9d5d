"""What the investigators' page draws: an account's two-hop network, the score histogram with
the thresholds in force, and the periodic results report (XLSX / PDF / JSON)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from serving import network, results
from serving.auth import Investigator, Viewer
from serving.deps import RequestId, StoreDep
from serving.errors import ApiError, responses
from serving.schemas import ACCOUNT_ID_DOC, ID_LEN_NORMALISED, AccountId

router = APIRouter(tags=["insight"])
DEFAULT_REVIEW = 0.5  # before the scorer has recorded a model


def thresholds_in_force(request: Request, store: Any) -> dict[str, Any]:
    s = request.app.state.settings
    return network.thresholds(store.model_info(), getattr(s, "review_threshold", None),
                              getattr(s, "hold_threshold", None))


def _review(request: Request, store: Any) -> float:
    value = thresholds_in_force(request, store)["review"]
    return float(value) if value is not None else DEFAULT_REVIEW


@router.get("/v1/accounts/{account_id}/network", summary="Counterparties within two hops",
            description="Money in/out and shared login devices around an account, two hops "
                        "deep (the largest flows first), with the accounts of this bank "
                        "marked by current risk, case status and typology. Audited.",
            responses=responses(401, 403, 404, 422, 500))
def account_network(
    request: Request, principal: Viewer, store: StoreDep, rid: RequestId,
    account_id: Annotated[AccountId, Path(min_length=1, max_length=ID_LEN_NORMALISED,
                                           description=ACCOUNT_ID_DOC)],
) -> dict[str, Any]:
    if not store.account_exists(account_id):
        raise ApiError(404, "not_found", f"no account '{account_id}'")
    store.record_audit(principal.name, principal.role, "account.network", account_id, rid)
    review = _review(request, store)
    with store.read() as conn:
        return network.network(conn, account_id, review)


@router.get("/v1/model/score-histogram", summary="Current account risk in bins, thresholds",
            description="How many accounts sit at each current risk, with the review/hold "
                        "thresholds in force (the model's unless the operator overrides them "
                        "with CANHGIAC_REVIEW_THRESHOLD / CANHGIAC_HOLD_THRESHOLD).",
            responses=responses(401, 403, 422, 500))
def score_histogram(request: Request, principal: Viewer, store: StoreDep,
                    bins: Annotated[int, Query(ge=2, le=100)] = 20) -> dict[str, Any]:
    with store.read() as conn:
        hist = network.score_histogram(conn, bins)
    return {**hist, "thresholds": thresholds_in_force(request, store)}


@router.get("/v1/reports/results", summary="Periodic results report (XLSX, PDF or JSON)",
            description=results.__doc__, responses={
                **responses(401, 403, 422, 500),
                200: {"description": "XLSX, PDF or JSON", "content": {
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
                    "application/pdf": {}}}})
def results_report(
    request: Request, principal: Investigator, store: StoreDep, rid: RequestId,
    from_: Annotated[datetime, Query(alias="from", description="Start (RFC 3339, inclusive)")],
    to: Annotated[datetime, Query(description="End (RFC 3339, exclusive)")],
    format: Annotated[Literal["xlsx", "pdf", "json"], Query()] = "xlsx",  # noqa: A002
) -> Response:
    try:
        t_from, t_to = results.check_period(from_, to)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    with store.read() as conn:
        res = results.compute(conn, t_from, t_to, _review(request, store))
    store.record_audit(principal.name, principal.role, "report.results",
                       f"results {from_.isoformat()}..{to.isoformat()}", rid)
    if format == "json":
        import orjson  # noqa: PLC0415

        return Response(orjson.dumps(results.to_json(res)), media_type="application/json")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    body, media = ((results.to_xlsx(res), "application/vnd.openxmlformats-officedocument."
                    "spreadsheetml.sheet") if format == "xlsx"
                   else (results.to_pdf(res), "application/pdf"))
    return Response(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="results-{stamp}.{format}"'})
