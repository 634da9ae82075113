"""The domain's words, named once and below every other module: broker types, and every OKX limit, path and host."""

from __future__ import annotations

import re
from datetime import timedelta, timezone
from enum import StrEnum


class BrokerType(StrEnum):
    """The two kinds of Fully Disclosed broker; OKX's `brokerType` parameter."""

    API = "api"
    OAUTH = "oauth"


REBATE_PATH = "/api/v5/broker/fd/rebate-per-orders"
"""One path, two verbs: POST creates a rebate file for a range, GET lists files or asks for one range's link."""

PUBLIC_TIME_PATH = "/api/v5/public/time"
"""OKX's unsigned server-time endpoint (the doctor reads the clock skew from it)."""

CREATE_INTERVAL = timedelta(minutes=60)
"""POST (create): 1 request per 60 minutes per OKX user (shared by both broker types)."""

CREATE_WAIT = timedelta(minutes=5)
"""How long a pass waits for the account's create hour when it frees that soon, instead of giving the hour up.

An hourly pass whose create went out a few seconds into the hour finds the next hour a few seconds short; without
this wait the schedule would slide and lose every other hour."""

MAX_RETRY_AFTER = timedelta(hours=2)
"""The longest Retry-After believed from a 50011 (a longer one is taken as this, with a warning)."""

GET_LIMIT = 2
GET_WINDOW = timedelta(minutes=1)
"""GET (download link): 2 requests per minute per OKX user."""

MAX_WINDOW_DAYS = 180
"""One create request covers at most 180 days, both ends included."""

OKX_FILE_HOSTS = re.compile(r"^(okg-[a-z0-9-]+\.oss-[a-z0-9-]+\.aliyuncs\.com|([a-z0-9-]+\.)*okx\.com)$")
"""Hosts OKX serves rebate files from: its OSS buckets (the docs' example link is `http://okg-pri-hk.oss-cn-hongkong.
aliyuncs.com/...`) and its own domain. A plain-http link to one of them is fetched over https instead."""

LINK_VALIDITY = timedelta(hours=2)
"""A `fileHref` is valid for 2 hours after the GET that returned it."""

GENERATION_TIME = timedelta(hours=2)
"""OKX says to check for a new file after about 2 hours (and contact support after 3)."""

OVERDUE_AFTER = timedelta(hours=3)
"""OKX's docs: contact support when a file has not appeared 3 hours after the create."""

TIMESTAMP_TOLERANCE = timedelta(seconds=30)
"""A request whose OK-ACCESS-TIMESTAMP is further than this from the server's clock is rejected (50102)."""

OKX_DAY_TZ = timezone(timedelta(hours=8))
"""Day boundaries the docs' examples use (UTC+8); the pipeline's own is the REBATES_TZ setting."""

DATE_FORMAT = "%Y%m%d"
"""`begin` / `end` as OKX takes them: YYYYMMDD, both included."""

IF_REBATE_PATH = "/api/v5/broker/fd/if-rebate"
"""GET: whether a user's API key earns the broker a rebate, and if not, why (`type` 0-4)."""

IF_REBATE_LIMIT = 2
IF_REBATE_WINDOW = timedelta(seconds=1)
"""GET if-rebate: 2 requests per second per OKX user (the broker's account)."""
