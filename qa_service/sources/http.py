"""One HTTP session for open-data services: retries, backoff, Retry-After, a rate limit.

Retrying is urllib3's :class:`~urllib3.util.Retry` mounted through requests'
:class:`~requests.adapters.HTTPAdapter`: connection errors, read time-outs and the
statuses in :data:`RETRY_STATUSES` are tried again with exponential backoff, and a
``Retry-After`` header (429, 503) is honoured. Every request, a retry too, waits its turn
under the session's request rate.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from .. import __version__

logger = logging.getLogger(__name__)

#: Statuses worth asking again: too many requests and the server's passing faults.
RETRY_STATUSES = (429, 500, 502, 503, 504)
USER_AGENT = (
    f"qa_service/{__version__} (question answering with cited passages over Swedish "
    "parliamentary documents; python-requests)"
)


class RateLimit:
    """At most ``rate`` requests per second from this session (0: no limit)."""

    def __init__(self, rate: float, clock: Any = time.monotonic, sleep: Any = time.sleep) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until the next request may go; returns the seconds waited."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = self._clock()
            delay = max(0.0, self._next - now)
            self._next = max(now, self._next) + self.interval
        if delay:
            self._sleep(delay)
        return delay


class _RateLimitedAdapter(HTTPAdapter):
    def __init__(self, rate_limit: RateLimit, **kwargs: Any) -> None:
        self.rate_limit = rate_limit
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.rate_limit.wait()
        return super().send(request, *args, **kwargs)


def make_retry(retries: int, backoff: float, backoff_max: float = 60.0) -> Retry:
    """The retry policy: ``retries`` more tries on errors and :data:`RETRY_STATUSES`."""
    return Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        backoff_factor=backoff,
        backoff_max=backoff_max,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        # The last answer comes back as it is, so its status can be reported.
        raise_on_status=False,
    )


def make_session(
    *,
    retries: int = 5,
    backoff: float = 1.0,
    rate: float = 2.0,
    user_agent: str = USER_AGENT,
) -> requests.Session:
    """A session that retries politely and keeps to ``rate`` requests per second."""
    session = requests.Session()
    session.headers["User-Agent"] = user_agent
    session.headers["Accept"] = "application/json"
    adapter = _RateLimitedAdapter(RateLimit(rate), max_retries=make_retry(retries, backoff))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
