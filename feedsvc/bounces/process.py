"""A message that came back → the signal it is, matched to its delivery and subscriber.

Matching, most certain first: the VERP token in an address the message was sent to (or
the original's Return-Path), which names the delivery; the original message's Message-ID
(every digest's is kept with its delivery); the address the report names as the
recipient. Mail to the List-Unsubscribe ``mailto:`` address (``unsubscribe+{token}@…``)
is an unsubscribe for the delivery its token names, whatever the message says; without a
valid token it is nothing (an address alone never unsubscribes anyone by mail).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from feedsvc.bounces.classify import Classified, classify
from feedsvc.bounces.webhooks import WebhookEvent
from feedsvc.config import Settings
from feedsvc.delivery.return_path import UNSUBSCRIBE_CONTEXT, ReturnPaths
from feedsvc.errors import AddressError
from feedsvc.models import InboundSignal, SignalKind, SignalOutcome
from feedsvc.newsletter.subscribers import normalise_address
from feedsvc.newsletter.tokens import load_secrets
from feedsvc.storage import Store
from feedsvc.storage.inbound_signals import (
    SignalPolicy,
    delivery_by_message_id,
    delivery_subscriber,
    record_signal,
)
from feedsvc.storage.subscribers import get_subscriber

MAILTO_SOURCE = "mailto"


@dataclass(frozen=True)
class Matcher:
    """The site's VERP templates and keys: ``delivery.return_path`` and
    ``bounces.unsubscribe_address`` (either may be unset)."""

    return_paths: ReturnPaths | None = None
    unsubscribe: ReturnPaths | None = None


def message_key(raw: bytes) -> str:
    """The key a message is kept by: the same bytes read twice are one signal."""
    return "mail:" + hashlib.sha256(raw).hexdigest()


def signal_of(conn: Connection, raw: bytes, matcher: Matcher) -> tuple[InboundSignal, Classified]:
    """What ``raw`` is and whom it is about (reads the store, writes nothing)."""
    found = classify(raw)
    key = message_key(raw)
    clues = found.clues
    if matcher.unsubscribe is not None:
        delivery_id = matcher.unsubscribe.find(clues.addressed_to)
        if delivery_id is not None and found.source.value not in ("dsn", "arf"):
            subscriber_id = delivery_subscriber(conn, delivery_id)
            signal = InboundSignal(
                key, MAILTO_SOURCE, SignalKind.UNSUBSCRIBE, subscriber_id, delivery_id
            )
            return signal, found
    delivery_id, subscriber_id = _match(conn, found, matcher)
    signal = InboundSignal(
        key,
        found.source.value,
        found.kind,
        subscriber_id,
        delivery_id,
        found.status,
        found.diagnostic,
    )
    return signal, found


def _match(conn: Connection, found: Classified, matcher: Matcher) -> tuple[int | None, int | None]:
    clues = found.clues
    if matcher.return_paths is not None:
        delivery_id = matcher.return_paths.find(clues.addressed_to)
        if delivery_id is not None:
            return delivery_id, delivery_subscriber(conn, delivery_id)
    by_id = delivery_by_message_id(conn, clues.message_ids) if clues.message_ids else None
    if by_id is not None:
        return by_id
    for address in clues.recipients:
        subscriber_id = _subscriber_by_address(conn, address)
        if subscriber_id is not None:
            return None, subscriber_id
    return None, None


def _subscriber_by_address(conn: Connection, address: str) -> int | None:
    try:
        normal = normalise_address(address, allow_test_domains=True)
    except AddressError:
        return None
    subscriber = get_subscriber(conn, normal)
    return None if subscriber is None else subscriber.id


def matcher_for(settings: Settings, store: Store) -> Matcher:
    """The site's Matcher: its VERP templates with its signing keys."""
    keys = load_secrets(settings, store=store)
    bounce = settings.delivery.return_path
    unsubscribe = settings.bounces.unsubscribe_address
    return Matcher(
        return_paths=ReturnPaths(bounce, keys) if bounce else None,
        unsubscribe=ReturnPaths(unsubscribe, keys, context=UNSUBSCRIBE_CONTEXT)
        if unsubscribe
        else None,
    )


def policy_for(settings: Settings) -> SignalPolicy:
    return SignalPolicy(
        bounce_limit=settings.delivery.bounce_limit,
        soft_limit=settings.bounces.soft_limit,
        soft_window=settings.bounces.soft_window,
    )


def apply_events(
    conn: Connection, events: Sequence[WebhookEvent], now: datetime, policy: SignalPolicy
) -> Counter[SignalOutcome]:
    """Each provider event matched (our Message-ID, else the address) and applied once."""
    outcomes: Counter[SignalOutcome] = Counter()
    for event in events:
        delivery_id, subscriber_id = None, None
        found = delivery_by_message_id(conn, [event.message_id]) if event.message_id else None
        if found is not None:
            delivery_id, subscriber_id = found
        elif event.email:
            subscriber_id = _subscriber_by_address(conn, event.email)
        signal = InboundSignal(
            event.key,
            event.source,
            event.kind,
            subscriber_id,
            delivery_id,
            event.status,
            event.diagnostic,
        )
        outcomes[record_signal(conn, signal, now, policy, actor=f"{event.source} webhook")] += 1
    return outcomes
