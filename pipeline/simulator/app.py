"""The simulated OKX as an ASGI app: the FD rebate and if-rebate endpoints, object-store file links, and controls.

OKX endpoints (signed like OKX, see FACTS.md): `POST` and `GET` on `REBATE_PATH`, `GET` on `IF_REBATE_PATH`. Every
decision about time uses
the injected clock. Checks run in this order, each answering OKX's envelope `{"code", "msg", "data": []}`:

1. injected faults: `server-error` → HTTP 503 / 50001, `busy` → 429 / 50013 (before anything else, like a gateway);
2. missing headers: OK-ACCESS-KEY 50103, OK-ACCESS-PASSPHRASE 50104, OK-ACCESS-TIMESTAMP 50107, OK-ACCESS-SIGN
   50106; unknown key 50111 (also a key sent to a host other than its account's `host`: another region's);
   live/demo mismatch 50101; wrong passphrase 50105; unparsable timestamp 50112; timestamp more than 30 s from
   the clock 50102; wrong signature 50113 (all HTTP 401);
3. not a broker account: 59608 (HTTP 200);
4. the rate limit (per account, never shared: 1 create per hour, 2 GETs per rolling minute) → HTTP 429 / 50011. A
   call that passes this point spends budget even if its parameters are then rejected (OKX limits before the handler);
5. parameters: brokerType (50044 when the account has both types and none is given, HTTP 200; 51000 for a type
   the account lacks), `begin`/`end`/`type` missing 50014, malformed 51000, begin after end 51000, a range over
   MAX_WINDOW_DAYS 50076, a body that is not a JSON object 50002 (all HTTP 400).

`GET if-rebate?apiKey=` runs steps 1-3, then its own limit (2 per rolling second per account, 50011), then: no
apiKey 50014; brokerType as above; a key no `SimulatorConfig.users` entry has, or one of another broker type,
53010; a user with an `error` answers that code (53004: frozen); otherwise the user's `type`, `brokerCode` (the
account's), `affiliated`, `clientRebateRatio` and `lastRebate`.

`GET /api/v5/public/time` (OKX's public server time, no auth) answers `{"code": "0", "data": [{"ts": <ms>}]}`
on the simulator's clock, so `rebates doctor` measures skew against a fake clock too.

File links (`/files/<token>/RebateDetails<MMDD>-<MMDD>.<ext>?Expires=&OSSAccessKeyId=&Signature=`) need no OKX
auth; they are signed by their query like an object store. Expired → HTTP 403 with OSS's XML
`<Code>AccessDenied</Code><Message>Request has expired.</Message>`; a tampered or unknown link → 403 as well.

Control endpoints (no OKX auth, loopback clients only), for a simulator running in another process:

- `GET  /__sim__/state`: JSON with `clock` (now, nowMs, fake), `ranges`, `counts` ("METHOD path" → n), `calls`,
  `faults` (pending counts) and `createNextAt` per API key;
- `POST /__sim__/clock/advance` `{"seconds": n}`: move a FakeClock forward (409 when the clock is real);
- `POST /__sim__/faults` `{"fault": "busy", "times": 2, "how": "truncate"}` (`how` only for malformed-file);
- `POST /__sim__/seed` `{"apiKey": "...", "brokerType": "api", "begin": "YYYYMMDD", "end": "YYYYMMDD",
  "requestedAt": <epoch ms>}`: a file as if requested from the broker dashboard (apiKey and requestedAt optional);
- `POST /__sim__/reset`: forget ranges, budgets, faults and the call log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from pipeline.clock import Clock, FakeClock, SystemClock, epoch_ms, from_epoch_ms
from pipeline.config import LOOPBACK_HOSTS
from pipeline.domain import (
    DATE_FORMAT,
    IF_REBATE_PATH,
    LINK_VALIDITY,
    MAX_WINDOW_DAYS,
    PUBLIC_TIME_PATH,
    REBATE_PATH,
    TIMESTAMP_TOLERANCE,
    BrokerType,
)
from pipeline.okx.signing import parse_okx_timestamp, sign
from pipeline.simulator.files import Corruption, FileShape, corrupt
from pipeline.simulator.state import (
    OSS_ACCESS_KEY_ID,
    STALL_LIMIT,
    Fault,
    RangeRecord,
    SimAccount,
    SimulatorConfig,
    SimulatorState,
)

FILES_PATH = "/files"
"""Where file links point; downloads are logged under this path."""
CONTROL_PATH = "/__sim__"

ERRORS: dict[str, tuple[int, str]] = {
    "50001": (503, "Service temporarily unavailable. Please try again later."),
    "50002": (400, "JSON syntax error"),
    "50011": (429, "Rate limit reached. Please refer to API documentation and throttle requests accordingly."),
    "50013": (429, "Systems are busy. Please try again later."),
    "50014": (400, "Parameter {0} can not be empty."),
    "50044": (200, "Must select one broker type"),
    "50076": (400, f"The time range between begin and end cannot exceed {MAX_WINDOW_DAYS} days."),
    "50101": (401, "APIKey does not match current environment."),
    "50102": (401, "Timestamp request expired."),
    "50103": (401, "Request header OK-ACCESS-KEY cannot be empty."),
    "50104": (401, "Request header OK-ACCESS-PASSPHRASE cannot be empty."),
    "50105": (401, "Request header OK-ACCESS-PASSPHRASE incorrect."),
    "50106": (401, "Request header OK-ACCESS-SIGN cannot be empty."),
    "50107": (401, "Request header OK-ACCESS-TIMESTAMP cannot be empty."),
    "50111": (401, "Invalid OK-ACCESS-KEY."),
    "50112": (401, "Invalid OK-ACCESS-TIMESTAMP."),
    "50113": (401, "Invalid Sign."),
    "51000": (400, "Parameter {0} error"),
    "53004": (400, "Account has been frozen"),
    "53010": (400, "Parameter {0} error"),
    "59608": (200, "Only the broker account has permission to operate this API."),
}
"""OKX code → (HTTP status, message) for every error the simulator answers."""

MEDIA_TYPES: dict[FileShape, str] = {
    FileShape.CSV: "text/csv",
    FileShape.CSV_BOM: "text/csv",
    FileShape.CSV_CRLF: "text/csv",
    FileShape.ZIP_CSV: "application/zip",
    FileShape.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    FileShape.XLS: "application/vnd.ms-excel",
}


@dataclass(frozen=True)
class _Answer:
    """One OKX reply: HTTP status and the envelope."""

    status: int
    code: str
    msg: str = ""
    data: list[dict[str, str]] = field(default_factory=list)

    def response(self) -> JSONResponse:
        return JSONResponse({"code": self.code, "msg": self.msg, "data": self.data}, status_code=self.status)


class _Rejected(Exception):
    """Raised inside a handler to answer with an OKX error."""

    def __init__(self, code: str, *args: str) -> None:
        super().__init__(code)
        status, template = ERRORS[code]
        self.answer = _Answer(status=status, code=code, msg=template.format(*args))


def _ok(data: list[dict[str, str]]) -> _Answer:
    return _Answer(status=200, code="0", data=data)


class _TruncatedResponse(Response):
    """Announces the whole body's Content-Length, sends half of it, and ends without completing the response."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = bytes(self.body)
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})


class _StalledResponse(Response):
    """Announces the whole body's Content-Length, sends half of it, then waits for the client to go (STALL_LIMIT)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = bytes(self.body)
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})

        async def client_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                continue

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client_gone(), STALL_LIMIT.total_seconds())


def _xml_error(code: str, message: str, **extra: str) -> Response:
    """An object-store style 403 with an XML body."""
    fields = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in extra.items())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>{fields}"
        "<HostId>simulator.oss.local</HostId></Error>\n"
    )
    return Response(body, status_code=403, media_type="application/xml")


def _iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class SimulatorApp:
    """The ASGI app of the simulated OKX. It owns its state; `clock` decides every question of time."""

    def __init__(self, config: SimulatorConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.clock: Clock = clock or SystemClock()
        self.state = SimulatorState(self.config, self.clock)
        self._app = Starlette(
            routes=[
                Route(REBATE_PATH, self._rebates, methods=["GET", "POST"]),
                Route(IF_REBATE_PATH, self._if_rebate, methods=["GET"]),
                Route(PUBLIC_TIME_PATH, self._public_time, methods=["GET"]),
                Route(FILES_PATH + "/{token}/{name}", self._download, methods=["GET"]),
                Route(CONTROL_PATH + "/state", self._control_state, methods=["GET"]),
                Route(CONTROL_PATH + "/clock/advance", self._control_advance, methods=["POST"]),
                Route(CONTROL_PATH + "/faults", self._control_faults, methods=["POST"]),
                Route(CONTROL_PATH + "/seed", self._control_seed, methods=["POST"]),
                Route(CONTROL_PATH + "/reset", self._control_reset, methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection."""
        await self._app(scope, receive, send)

    # OKX endpoints

    async def _rebates(self, request: Request) -> Response:
        now = self.clock.now()
        body = await request.body()
        try:
            answer = self._handle(request, body, now)
        except _Rejected as rejected:
            answer = rejected.answer
        return self._logged(request, REBATE_PATH, answer, now)

    async def _if_rebate(self, request: Request) -> Response:
        now = self.clock.now()
        try:
            answer = self._user_answer(request, now)
        except _Rejected as rejected:
            answer = rejected.answer
        return self._logged(request, IF_REBATE_PATH, answer, now)

    def _logged(self, request: Request, path: str, answer: _Answer, now: datetime) -> Response:
        """Record the call in the call log (its account and host too), then answer it."""
        self.state.record_call(
            request.method,
            path,
            answer.status,
            answer.code,
            now,
            api_key=self._caller(request),
            host=_host(request),
            sent_at=_sent_at(request),
        )
        return answer.response()

    def _counted_at(self, request: Request, now: datetime) -> datetime:
        """When a call counts against OKX's GET limits: when it arrives, as OKX counts. On a clock shared with other
        processes (`check_timestamps` off), when it was signed: a call in flight while another process's simulated
        wait moves the clock would otherwise arrive a simulated minute after it was sent."""
        if self.config.check_timestamps:
            return now
        return _sent_at(request) or now

    def _caller(self, request: Request) -> str | None:
        """The account a request's OK-ACCESS-KEY names, for the call log (None for an unknown or missing key)."""
        key = request.headers.get("OK-ACCESS-KEY", "")
        return key if self.state.account(key) is not None else None

    def _user_answer(self, request: Request, now: datetime) -> _Answer:
        if self.state.faults.take(Fault.SERVER_ERROR)[0]:
            raise _Rejected("50001")
        if self.state.faults.take(Fault.BUSY)[0]:
            raise _Rejected("50013")
        account = self._authenticate(request, b"", now)
        if not account.is_broker:
            raise _Rejected("59608")
        if not self.state.try_spend_if_rebate(account.api_key, self._counted_at(request, now)):
            raise _Rejected("50011")
        query = request.query_params
        api_key = query.get("apiKey")
        if not api_key:
            raise _Rejected("50014", "apiKey")
        broker_type = _broker_type(account, query.get("brokerType"))
        user = self.config.user(api_key)
        if user is None or user.broker_type is not broker_type:
            raise _Rejected("53010", "apiKey")
        if user.error is not None:
            raise _Rejected(user.error)
        return _ok(
            [
                {
                    "type": user.type,
                    "brokerCode": f"{account.api_key[-4:]}{broker_type.value}SCDE",
                    "affiliated": "true" if user.affiliated else "false",
                    "clientRebateRatio": user.client_rebate_ratio,
                    "lastRebate": user.last_rebate,
                }
            ]
        )

    async def _public_time(self, request: Request) -> Response:
        now = self.clock.now()
        self.state.record_call(request.method, PUBLIC_TIME_PATH, 200, "0", now)
        return JSONResponse({"code": "0", "msg": "", "data": [{"ts": str(epoch_ms(now))}]})

    def _handle(self, request: Request, body: bytes, now: datetime) -> _Answer:
        if self.state.faults.take(Fault.SERVER_ERROR)[0]:
            raise _Rejected("50001")
        if self.state.faults.take(Fault.BUSY)[0]:
            raise _Rejected("50013")
        account = self._authenticate(request, body, now)
        if not account.is_broker:
            raise _Rejected("59608")
        if request.method == "POST":
            return self._create(account, body, now)
        return self._links(account, request, now)

    def _authenticate(self, request: Request, body: bytes, now: datetime) -> SimAccount:
        headers = request.headers
        key = headers.get("OK-ACCESS-KEY", "")
        passphrase = headers.get("OK-ACCESS-PASSPHRASE", "")
        timestamp = headers.get("OK-ACCESS-TIMESTAMP", "")
        signature = headers.get("OK-ACCESS-SIGN", "")
        for value, code in ((key, "50103"), (passphrase, "50104"), (timestamp, "50107"), (signature, "50106")):
            if not value:
                raise _Rejected(code)
        account = self.state.account(key)
        if account is None or (account.host is not None and _host(request) != account.host):
            raise _Rejected("50111")
        if (headers.get("x-simulated-trading") == "1") != self.config.demo_only:
            raise _Rejected("50101")
        if not hmac.compare_digest(passphrase.encode(), account.passphrase.encode()):
            raise _Rejected("50105")
        try:
            sent_at = parse_okx_timestamp(timestamp)
        except ValueError:
            raise _Rejected("50112") from None
        if self.config.check_timestamps and abs(now - sent_at) > TIMESTAMP_TOLERANCE:
            raise _Rejected("50102")
        raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
        query = request.scope.get("query_string", b"")
        request_path = raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        expected = sign(account.secret_key, timestamp, request.method, request_path, body)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise _Rejected("50113")
        return account

    def _create(self, account: SimAccount, body: bytes, now: datetime) -> _Answer:
        if not self.state.try_spend_create(account.api_key, now):
            raise _Rejected("50011")
        try:
            params = json.loads(body) if body.strip() else {}
        except ValueError:
            raise _Rejected("50002") from None
        if not isinstance(params, dict):
            raise _Rejected("50002")
        broker_type = _broker_type(account, params.get("brokerType"))
        begin, end = _date_param(params, "begin"), _date_param(params, "end")
        if begin > end:
            raise _Rejected("51000", "end")
        if (end - begin).days + 1 > MAX_WINDOW_DAYS:
            raise _Rejected("50076")
        if self.state.faults.take(Fault.LOST_CREATE)[0]:
            return _ok([{"result": "false", "ts": str(epoch_ms(now))}])
        record, created = self.state.request_range(account.api_key, broker_type, begin, end, now)
        return _ok([{"result": "false" if created else "true", "ts": str(epoch_ms(record.requested_at))}])

    def _links(self, account: SimAccount, request: Request, now: datetime) -> _Answer:
        if not self.state.try_spend_get(account.api_key, self._counted_at(request, now)):
            raise _Rejected("50011")
        query = request.query_params
        kind = query.get("type")
        if not kind:
            raise _Rejected("50014", "type")
        if kind not in {"true", "false"}:
            raise _Rejected("51000", "type")
        broker_type = _broker_type(account, query.get("brokerType"))
        if kind == "true":
            records = self.state.ranges(account.api_key, broker_type)
        else:
            begin, end = _date_param(query, "begin"), _date_param(query, "end")
            found = self.state.find_range(account.api_key, broker_type, begin, end)
            records = [found] if found is not None else []
            if found is not None and self.state.faults.take(Fault.SHORT_RANGE)[0]:
                half = begin + timedelta(days=(end - begin).days // 2)
                records = [self.state.seed_file(account.api_key, broker_type, begin, half, found.requested_at)]
        base_url = str(request.base_url).rstrip("/")
        return _ok([self._item(record, now, base_url) for record in records])

    def _item(self, record: RangeRecord, now: datetime, base_url: str) -> dict[str, str]:
        finished = record.is_finished(now)
        href = ""
        if finished:
            if self.state.faults.take(Fault.EXPIRED_LINK)[0]:
                expires = math.floor((now - timedelta(seconds=1)).timestamp())
            else:
                expires = math.ceil((now + LINK_VALIDITY).timestamp())
            name = self.state.file_name(record)
            query = urlencode(
                {
                    "Expires": str(expires),
                    "OSSAccessKeyId": OSS_ACCESS_KEY_ID,
                    "Signature": self.state.link_signature(record.token, name, expires),
                }
            )
            href = f"{base_url}{FILES_PATH}/{record.token}/{name}?{query}"
        return {
            "fileHref": href,
            "beginTime": str(epoch_ms(self._day_start(record.begin))),
            "endTime": str(epoch_ms(self._day_start(record.end))),
            "cTime": str(epoch_ms(record.requested_at)),
            "ts": str(epoch_ms(now)),
            "state": "finished" if finished else "ongoing",
        }

    def _day_start(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self.config.day_tz)

    # File links (object store)

    async def _download(self, request: Request) -> Response:
        now = self.clock.now()
        response = await self._serve_file(request, now)
        record = self.state.range_by_token(request.path_params["token"])
        api_key = record.api_key if record is not None else None
        self.state.record_call("GET", FILES_PATH, response.status_code, None, now, api_key=api_key, host=_host(request))
        return response

    async def _serve_file(self, request: Request, now: datetime) -> Response:
        token: str = request.path_params["token"]
        name: str = request.path_params["name"]
        query = request.query_params
        expires_text, key_id, signature = query.get("Expires"), query.get("OSSAccessKeyId"), query.get("Signature")
        if not expires_text or not key_id or not signature:
            return _xml_error("AccessDenied", "You have no right to access this object because of bucket acl.")
        if key_id != OSS_ACCESS_KEY_ID:
            return _xml_error("InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records.")
        try:
            expires = int(expires_text)
        except ValueError:
            return _xml_error("AccessDenied", "Invalid expires.")
        expected = self.state.link_signature(token, name, expires)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return _xml_error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        if now.timestamp() > expires:
            return _xml_error(
                "AccessDenied",
                "Request has expired.",
                Expires=_iso_ms(from_epoch_ms(expires * 1000)),
                ServerTime=_iso_ms(from_epoch_ms(epoch_ms(now))),
            )
        record = self.state.range_by_token(token)
        if record is None or self.state.file_name(record) != name:
            return _xml_error("AccessDenied", "The object is gone.")
        data = await run_in_threadpool(self.state.file_bytes, record)
        malformed, how = self.state.faults.take(Fault.MALFORMED_FILE)
        if malformed and how is not None:
            data = _corrupted(data, how)
        media_type = MEDIA_TYPES[self.state.file_spec(record).shape]
        if self.state.faults.take(Fault.TRUNCATED_DOWNLOAD)[0]:
            self.state.note_deliberate_truncation()
            return _TruncatedResponse(data, media_type=media_type)
        if self.state.faults.take(Fault.STALLED_DOWNLOAD)[0]:
            self.state.note_deliberate_truncation()
            return _StalledResponse(data, media_type=media_type)
        return Response(data, media_type=media_type)

    # Control endpoints

    async def _control_state(self, request: Request) -> Response:
        return _refuse_remote(request) or JSONResponse(self.state.snapshot())

    async def _control_advance(self, request: Request) -> Response:
        if refused := _refuse_remote(request):
            return refused
        if not isinstance(self.clock, FakeClock):
            return JSONResponse({"error": "the simulator runs on the real clock; start it with --fake-clock"}, 409)
        payload = await _json_object(request)
        seconds = payload.get("seconds") if payload is not None else None
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            return JSONResponse({"error": 'expected {"seconds": <a number >= 0>}'}, 400)
        now = self.clock.advance(float(seconds))
        return JSONResponse({"now": now.isoformat(), "nowMs": epoch_ms(now)})

    async def _control_faults(self, request: Request) -> Response:
        if refused := _refuse_remote(request):
            return refused
        payload = await _json_object(request)
        if payload is None:
            return JSONResponse({"error": 'expected {"fault": "...", "times": n, "how": "..."}'}, 400)
        times = payload.get("times", 1)
        how = payload.get("how")
        try:
            if not isinstance(times, int) or isinstance(times, bool):
                raise ValueError("times must be an integer")
            if how is not None and not isinstance(how, str):
                raise ValueError("how must be a string")
            self.state.faults.inject(str(payload.get("fault")), times, how=how)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"faults": self.state.faults.snapshot()})

    async def _control_seed(self, request: Request) -> Response:
        if refused := _refuse_remote(request):
            return refused
        payload = await _json_object(request)
        if payload is None:
            return JSONResponse(
                {"error": 'expected {"brokerType": "api", "begin": "YYYYMMDD", "end": "YYYYMMDD"}'}, 400
            )
        try:
            api_key = str(payload.get("apiKey") or self.config.accounts[0].api_key)
            begin = _parse_day(payload.get("begin"), "begin")
            end = _parse_day(payload.get("end"), "end")
            requested_ms = payload.get("requestedAt")
            requested_at = from_epoch_ms(requested_ms) if requested_ms is not None else None
            account = self.state.account(api_key)
            default_type = account.broker_types[0] if account is not None and account.broker_types else "api"
            broker_type = BrokerType(str(payload.get("brokerType") or default_type))
            record = self.state.seed_file(api_key, broker_type, begin, end, requested_at)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(
            {
                "apiKey": record.api_key,
                "brokerType": record.broker_type.value,
                "begin": f"{record.begin:{DATE_FORMAT}}",
                "end": f"{record.end:{DATE_FORMAT}}",
                "cTime": str(epoch_ms(record.requested_at)),
                "readyAt": str(epoch_ms(record.ready_at)),
            }
        )

    async def _control_reset(self, request: Request) -> Response:
        if refused := _refuse_remote(request):
            return refused
        self.state.reset()
        return JSONResponse({"reset": True})


def _sent_at(request: Request) -> datetime | None:
    """When the client signed the request (its OK-ACCESS-TIMESTAMP), None when it has none that parses."""
    try:
        return parse_okx_timestamp(request.headers.get("OK-ACCESS-TIMESTAMP", ""))
    except ValueError:
        return None


def _host(request: Request) -> str:
    """The host name a request was sent to (its Host header without the port)."""
    return request.url.hostname or ""


def _corrupted(data: bytes, how: Corruption) -> bytes:
    """`corrupt(data, how)`, or the garbage page when `how` needs a data row the file does not have."""
    try:
        return corrupt(data, how.value)
    except ValueError:
        return corrupt(data, Corruption.GARBAGE.value)


def _broker_type(account: SimAccount, value: object) -> BrokerType:
    """The broker type a request means: required when the account has both (50044), must be one it has (51000)."""
    if value is None or value == "":
        if len(account.broker_types) > 1:
            raise _Rejected("50044")
        return account.broker_types[0]
    if not isinstance(value, str) or value not in {member.value for member in account.broker_types}:
        raise _Rejected("51000", "brokerType")
    return BrokerType(value)


def _date_param(params: Any, name: str) -> date:
    """A required YYYYMMDD parameter from a JSON body or a query string (50014 when absent, 51000 when malformed)."""
    value = params.get(name)
    if value is None or value == "":
        raise _Rejected("50014", name)
    try:
        return _parse_day(value, name)
    except ValueError:
        raise _Rejected("51000", name) from None


def _parse_day(value: object, name: str) -> date:
    if not isinstance(value, str) or len(value) != len("YYYYMMDD") or not value.isdigit():
        raise ValueError(f"{name} must be a date as YYYYMMDD")
    return datetime.strptime(value, DATE_FORMAT).date()


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        payload = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _refuse_remote(request: Request) -> Response | None:
    """The control endpoints answer loopback clients only."""
    client = request.client
    if client is None or client.host not in LOOPBACK_HOSTS:
        return JSONResponse({"error": "control endpoints answer loopback clients only"}, 403)
    return None
