"""WebSub publish pings: tell the hub which feed URLs changed (the I/O edge of feeds).

The hub is ``feeds.websub_hub``; the feeds already advertise it with ``rel="hub"``. A
ping is a form POST ``hub.mode=publish`` with one ``hub.url`` per changed feed (the form
most hubs accept, including Google's and WebSub.rocks'). A hub that is down or refuses
only costs a warning: the feeds are on disk either way and the next change pings again.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence

from feedsvc import __version__
from feedsvc.models import Message, Problem, Severity

TIMEOUT_S = 10.0


def feed_urls(base_url: str, changed_files: Sequence[str]) -> list[str]:
    """The public URLs of the changed feed files (removed ones included: hubs refetch)."""
    return [base_url + urllib.parse.quote(rel) for rel in sorted(changed_files)]


def announce(hub: str, urls: Sequence[str], timeout: float = TIMEOUT_S) -> list[Problem]:
    """POST one publish ping for ``urls``; problems (warnings) instead of exceptions."""
    if not urls:
        return []
    body = urllib.parse.urlencode(
        [("hub.mode", "publish"), *(("hub.url", url) for url in urls)]
    ).encode("ascii")
    request = urllib.request.Request(
        hub,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": f"feedsvc/{__version__}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        unreachable = Message.of(
            "feeds.websub_unreachable",
            "could not reach the WebSub hub (%(reason)s); check feeds.websub_hub",
            reason=reason,
        )
        return [_warning(hub, unreachable)]
    if not 200 <= status < 300:
        refused = Message.of(
            "feeds.websub_status",
            "the WebSub hub answered HTTP %(status)s to the publish ping",
            status=status,
        )
        return [_warning(hub, refused)]
    return []


def _warning(hub: str, reason: Message) -> Problem:
    return Problem.of(hub, reason, None, Severity.WARNING)
