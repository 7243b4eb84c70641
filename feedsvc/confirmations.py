"""Double opt-in: a sign-up on the web queues one confirmation email, sent through the
configured delivery backend (the outbox by default), once, and retried on a temporary
failure.

    POST /subscribe ─▶ request_confirmation ─ one write transaction ─▶ subscriber (pending)
                                                                     + confirmations row
                     send_pending_confirmations ─ claim ─▶ Backend.send ─▶ sent / retry

At most one confirmation per address per ``security.confirm_interval``; none for an
address that is active, bounced, complained or erased. The caller answers the same in
every case (no address enumeration).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser

from jinja2 import Environment

from feedsvc.clock import Clock
from feedsvc.config import Settings
from feedsvc.messages import render_confirmation
from feedsvc.models import Frequency, SubscriberStatus
from feedsvc.outbox import Backend, DeliveryError
from feedsvc.sender import Sender
from feedsvc.storage import Store
from feedsvc.storage.confirmations import (
    FAILED,
    RETRY,
    SENT,
    claim_confirmations,
    last_confirmation_at,
    mark_confirmation,
    queue_confirmation,
)
from feedsvc.storage.delivery_claims import Claimed
from feedsvc.storage.subscriptions import sign_up
from feedsvc.tokens import Purpose, Tokens

log = logging.getLogger("feedsvc.confirmations")

LEASE = timedelta(minutes=5)
RETRY_DELAY = timedelta(minutes=2)
MAX_ATTEMPTS = 8
SEND_BATCH = 20
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
            name=subscriber.name,
            confirm_url=url,
            valid_for=settings.security.confirm_max_age,
            now=now,
        )
        message_id = BytesHeaderParser().parsebytes(message)["Message-ID"] or ""
        queue_confirmation(conn, subscriber.id, message_id=message_id, message=message, now=now)
    return True


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
