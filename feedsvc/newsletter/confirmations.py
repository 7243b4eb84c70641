"""Double opt-in: a sign-up on the web queues one confirmation email, sent through the
configured delivery backend (the outbox by default), once, and retried on a temporary
failure.

    POST /subscribe ─▶ request_confirmation ─ one write transaction ─▶ subscriber (pending)
                                                                     + confirmations row
                     send_pending_confirmations ─ claim ─▶ Backend.send ─▶ sent / retry

At most one confirmation per mailbox (``victim+1@`` and ``victim+2@`` are one) per
``security.confirm_interval``, and ``server.confirmations_per_minute`` for all addresses
together; none for an address that is active, bounced, complained or erased. The email
goes to the bare address and never shows the name typed into the form. The caller
answers the same in every case (no address enumeration, no telling which mail went).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser

from jinja2 import Environment
from sqlalchemy import Connection

from feedsvc.clock import Clock
from feedsvc.config import Settings
from feedsvc.delivery.outbox import Backend
from feedsvc.delivery.sender import Sender
from feedsvc.errors import DeliveryError
from feedsvc.models import Frequency, SubscriberStatus
from feedsvc.newsletter.messages import render_confirmation
from feedsvc.newsletter.subscribers import mailbox_of
from feedsvc.newsletter.tokens import Purpose, Tokens
from feedsvc.storage import Store
from feedsvc.storage.confirmations import (
    FAILED,
    RETRY,
    SENT,
    claim_confirmations,
    last_confirmation_at,
    mark_confirmation,
    queue_confirmation,
    recent_confirmations,
)
from feedsvc.storage.delivery_claims import Claimed
from feedsvc.storage.subscriptions import sign_up

log = logging.getLogger("feedsvc.confirmations")

LEASE = timedelta(minutes=5)
RETRY_DELAY = timedelta(minutes=2)
MAX_ATTEMPTS = 8
SEND_BATCH = 20
MAX_RECENT = 20_000  # confirmations read to apply the caps, at most
# Who may be asked to confirm: new or pending addresses, and those who left and come back.
_ASKABLE = frozenset({SubscriberStatus.PENDING, SubscriberStatus.UNSUBSCRIBED})


def confirm_binding(email: str, unsubscribed: datetime | None) -> str:
    """What a confirm token is made for: the address, and when it last unsubscribed (if it
    did). Unsubscribing changes it, so no link sent before an unsubscribe works after it."""
    if unsubscribed is None:
        return email  # links sent before this binding existed keep working
    return f"{email}\n{unsubscribed.astimezone(UTC).isoformat(timespec='microseconds')}"


@dataclass(frozen=True, slots=True)
class SignUp:
    email: str  # normalised
    name: str | None
    frequency: Frequency
    categories: tuple[str, ...]
    ip: str | None


def request_confirmation(
    store: Store,
    settings: Settings,
    tokens: Tokens,
    env: Environment,
    request: SignUp,
    now: datetime,
) -> bool:
    """Record the sign-up and queue a confirmation email; True when one was queued."""
    sender = Sender.from_settings(settings)
    with store.write() as conn:
        subscriber = sign_up(
            conn,
            request.email,
            name=request.name,
            frequency=request.frequency,
            categories=request.categories,
            now=now,
            ip=request.ip,
        )
        if subscriber is None or subscriber.status not in _ASKABLE:
            return False
        last = last_confirmation_at(conn, subscriber.id)
        if last is not None and now - last < settings.security.confirm_interval:
            return False
        if not _within_caps(conn, settings, subscriber.email, now):
            return False
        url = tokens.url(
            settings.server.public_url,
            Purpose.CONFIRM,
            subscriber.id,
            confirm_binding(subscriber.email, subscriber.unsubscribed),
        )
        message = render_confirmation(
            sender,
            env,
            email=subscriber.email,
            confirm_url=url,
            valid_for=settings.security.confirm_max_age,
            now=now,
        )
        message_id = BytesHeaderParser().parsebytes(message)["Message-ID"] or ""
        queue_confirmation(conn, subscriber.id, message_id=message_id, message=message, now=now)
    return True


def _within_caps(conn: Connection, settings: Settings, email: str, now: datetime) -> bool:
    """True when a confirmation to ``email`` stays within both caps: fewer than
    ``server.confirmations_per_minute`` in the last minute, all addresses together, and
    none to the same mailbox (``+tag`` ignored) within ``security.confirm_interval``."""
    per_minute = settings.server.confirmations_per_minute
    interval = settings.security.confirm_interval
    # The global cap bounds how many rows the interval can hold: read no more than that.
    minutes = max(1, math.ceil(interval / timedelta(minutes=1)))
    recent = recent_confirmations(conn, limit=min(MAX_RECENT, per_minute * minutes))
    last_minute = sum(1 for _, at in recent if now - at < timedelta(minutes=1))
    if last_minute >= per_minute:
        log.warning(
            "a confirmation was not sent: %d in the last minute reach "
            "server.confirmations_per_minute (%d); a sign-up flood? The address can ask "
            "again in a minute",
            last_minute,
            per_minute,
        )
        return False
    mailbox = mailbox_of(email)
    return not any(mailbox_of(other) == mailbox and now - at < interval for other, at in recent)


@dataclass
class ConfirmationsSent:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def send_pending_confirmations(
    store: Store, backend: Backend, clock: Clock, *, batch: int = SEND_BATCH
) -> ConfirmationsSent:
    """Hand every due confirmation to ``backend``; each row is marked as it goes. Stops at
    the first temporary failure (the backend is unwell; the rows stay due)."""
    report = ConfirmationsSent()
    while True:
        with store.write() as conn:
            claimed = claim_confirmations(conn, clock.now(), limit=batch, lease=LEASE)
        if not claimed:
            return report
        for row in claimed:
            message = Claimed(
                delivery_id=row.confirmation_id,
                subscriber_id=row.subscriber_id,
                email=row.email,
                message_id=row.message_id,
                message=row.message,
                attempts=row.attempts,
            )
            try:
                backend.send(message)
            except DeliveryError as exc:
                retry = exc.temporary and row.attempts < MAX_ATTEMPTS
                with store.write() as conn:
                    mark_confirmation(
                        conn,
                        row.confirmation_id,
                        RETRY if retry else FAILED,
                        now=clock.now(),
                        error=str(exc),
                        next_attempt=clock.now() + RETRY_DELAY * row.attempts if retry else None,
                    )
                log.warning("confirmation %s not sent: %s", row.message_id, exc)
                if retry:
                    report.retried += 1
                    return report
                report.failed += 1
                continue
            with store.write() as conn:
                mark_confirmation(conn, row.confirmation_id, SENT, now=clock.now())
            report.sent += 1
