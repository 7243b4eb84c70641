"""Digest content → email bytes: rendered once per content, personalised by substitution.

    posts ─ nh3 ─┐                                    (digest_views, labels)
    site, period ┼─▶ digest.html.j2 ─▶ css-inline ─▶ QP ─┐
                 └─▶ digest.txt.j2 ─────────────────▶ QP ─┼─▶ EmailMessage (SMTP policy)
    Subject, From, List-Id: mime.encode_words ────────────┘        │ as_bytes(), once
                                                                   ▼
                          chunks + slots ─▶ per subscriber: To, Message-ID, List-Unsubscribe,
                          (personalise)     unsubscribe/preferences URLs, address ─▶ (DKIM)

Templates see placeholders (``feedsvc.newsletter.personalise``) where per-subscriber values go, so
the one render serves every recipient. The result is what a full render with the
recipient's values gives, to the byte once decoded (a test compares them). The double
opt-in message (:func:`render_confirmation`) is rendered whole, once per address.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import css_inline
from jinja2 import Environment

from feedsvc.delivery.mime import (
    assemble,
    assemble_encoded,
    clean_header_text,
    format_address,
    header_text,
    qp_with_slots,
)
from feedsvc.delivery.sender import ONE_CLICK, Sender
from feedsvc.errors import ConfigError
from feedsvc.messages import Texts
from feedsvc.models import Period, Post
from feedsvc.newsletter.labels import count_label
from feedsvc.newsletter.personalise import MessageTemplate, Personal, Placeholders
from feedsvc.newsletter.views import period_view, post_view, preheader
from feedsvc.templating import render, template_file, text_environment

# Sender, Personal and MessageTemplate are imported from here by the sending side.
__all__ = [
    "DigestContent",
    "MessageTemplate",
    "Personal",
    "Sender",
    "inline_css",
    "render_confirmation",
    "render_digest",
    "render_subject",
]

BOUNDARY_PREFIX = "=_feedsvc_"


@dataclass(frozen=True, slots=True)
class DigestContent:
    """One digest: the posts some subscribers get for one period (rendered once)."""

    digest_id: int
    period: Period
    posts: tuple[Post, ...]
    created: datetime  # the Date header


def render_subject(sender: Sender, context: dict[str, Any], source: str) -> str:
    """``digest.subject`` rendered (plain text, one line, in the site's language: the
    catalogue's ``_`` and ``ngettext`` work in it as in the templates)."""
    try:
        environment = text_environment(sender.site.language)
        template = environment.from_string(sender.subject_template)
        subject = clean_header_text(template.render(context))
    except Exception as exc:  # any Jinja2 error in one config value: say which key
        raise ConfigError(
            source, [f"digest.subject = {sender.subject_template!r}: {exc}; fix the template"]
        ) from None
    return subject or sender.site.title


_INLINER = css_inline.CSSInliner(
    keep_at_rules=True, load_remote_stylesheets=False, keep_link_tags=False
)


def inline_css(document: str, name: str) -> str:
    """CSS from ``<style>`` moved into ``style`` attributes; @media rules (dark mode,
    narrow screens) stay in a ``<style>`` in the head."""
    try:
        return _INLINER.inline(document)
    except css_inline.InlineError as exc:
        raise ConfigError(name, [f"css-inline cannot process the CSS: {exc}"]) from None


# --- digest ----------------------------------------------------------------------------------


def render_digest(sender: Sender, content: DigestContent, env: Environment) -> MessageTemplate:
    """Render ``content`` once: templates, CSS inlining, MIME; personalise the result."""
    tz = ZoneInfo(content.period.timezone)
    language = sender.site.language
    posts = [post_view(post, tz, language) for post in content.posts]
    slot = Placeholders.avoiding(
        [sender.site.title, sender.site.description, sender.subject_template]
        + [text for p in content.posts for text in (p.html, p.summary, p.meta.title, p.meta.url)]
    )
    common: dict[str, Any] = {
        "site": sender.site,
        "posts": posts,
        "period": period_view(content.period, tz, language),
        "preheader": preheader(posts),
        "count_label": count_label(len(posts), language),
    }
    subject = render_subject(sender, common, "digest.subject")
    common["subject"] = subject
    html_body = _render_part(env, "digest.html.j2", common, slot, "H")
    text_body = _render_part(env, "digest.txt.j2", common, slot, "T")
    for name, body, part in (("digest.html.j2", html_body, "H"), ("digest.txt.j2", text_body, "T")):
        if slot.of("UNSUB" + part) not in body:
            raise ConfigError(
                template_file(env, name),
                ["the template must show {{ unsubscribe_url }} (a visible unsubscribe link)"],
            )
    html_body = inline_css(html_body, "digest.html.j2")
    headers = [
        ("From", slot.of("FROM")),
        ("To", slot.of("TO")),
        ("Subject", slot.of("SUBJECT")),
        ("Date", sender.date_header(content.created)),
        ("Message-ID", slot.of("MESSAGEID")),
        ("List-Id", slot.of("LISTID")),
        ("List-Unsubscribe", slot.of("LISTUNSUB")),
        ("List-Unsubscribe-Post", ONE_CLICK),
    ]
    boundary_seed = f"{content.digest_id}:{subject}:{text_body}:{html_body}".encode()
    boundary = BOUNDARY_PREFIX + hashlib.blake2b(boundary_seed, digest_size=12).hexdigest()
    personal = slot.personal()
    data = assemble(
        headers, qp_with_slots(text_body, personal), qp_with_slots(html_body, personal), boundary
    )
    shared = {
        "SUBJECT": header_text(subject, "Subject"),
        "FROM": sender.from_header(),
        "LISTID": sender.list_id_header(),
    }
    chunks, slots = slot.split(slot.fill_shared(data, shared))
    return MessageTemplate(
        digest_id=content.digest_id,
        chunks=chunks,
        slots=slots,
        domain=sender.domain,
        tag_key=hashlib.blake2b(sender.site.url.encode(), digest_size=16).digest(),
        subject=subject,
    )


def _render_part(
    env: Environment, name: str, common: dict[str, Any], slot: Placeholders, part: str
) -> str:
    """One body (``part`` "H" for HTML, "T" for text) with that part's placeholders."""
    return render(
        env,
        name,
        {
            **common,
            "unsubscribe_url": slot.of("UNSUB" + part),
            "preferences_url": slot.of("PREFS" + part),
            "email": slot.of("ADDR" + part),
        },
    )


# --- confirmation ---------------------------------------------------------------------------


def render_confirmation(
    sender: Sender,
    env: Environment,
    *,
    email: str,
    confirm_url: str,
    valid_for: timedelta,
    now: datetime,
) -> bytes:
    """The double opt-in message (``confirm.html.j2``, ``confirm.txt.j2``), to the bare
    address: the name came from whoever filled in the form, who may not own the address,
    so it appears nowhere in the message (no spam in a stranger's ``To:``)."""
    texts = Texts(sender.site.language)
    days = max(1, round(valid_for / timedelta(days=1)))
    context: dict[str, Any] = {
        "site": sender.site,
        "email": email,
        "confirm_url": confirm_url,
        "valid_days": days,
        "preheader": texts("confirm_email.body", site=sender.site.title),
    }
    subject = texts("confirm_email.subject", site=sender.site.title)
    context["subject"] = subject
    html_body = inline_css(render(env, "confirm.html.j2", context), "confirm.html.j2")
    text_body = render(env, "confirm.txt.j2", context)
    seed = f"{email}\n{confirm_url}\n{now.isoformat()}".encode()
    tag = hashlib.blake2b(seed, digest_size=10).hexdigest()
    headers = [
        ("From", sender.from_header()),
        ("To", format_address(None, email, "To")),
        ("Subject", header_text(subject, "Subject")),
        ("Date", sender.date_header(now)),
        ("Message-ID", f"<confirm.{tag}@{sender.domain}>"),
    ]
    never = re.compile(r"(?!x)x")
    return assemble_encoded(
        headers,
        qp_with_slots(text_body, never),
        qp_with_slots(html_body, never),
        BOUNDARY_PREFIX + tag,
    )
