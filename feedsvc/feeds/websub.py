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
from feedsvc.models import Problem, Severity

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
        return [_warning(hub, f"could not reach the WebSub hub ({reason}); check feeds.websub_hub")]
    if not 200 <= status < 300:
        return [_warning(hub, f"the WebSub hub answered HTTP {status} to the publish ping")]
    return []


def _warning(hub: str, reason: str) -> Problem:
    return Problem(path=hub, reason=reason, severity=Severity.WARNING)
