"""What the subscriber sends: form and JSON bodies read, and their fields checked into a
sign-up or a change of preferences. Any problem is a :class:`BadInput` whose message (in
the site's language, from the catalogue: ``texts``) names the field and is shown to the
subscriber as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from feedsvc.errors import AddressError, BadInput
from feedsvc.messages import Texts
from feedsvc.models import Frequency
from feedsvc.newsletter.categories import SiteCategories, quoted
from feedsvc.newsletter.confirmations import SignUp
from feedsvc.newsletter.subscribers import (
    clean_name,
    normalise_address,
    parse_categories,
    parse_frequency,
    parse_timezone,
    zone_like,
)

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
CATEGORIES = "categories"  # the field
HONEYPOT = "website"
MAX_CATEGORIES = 50
# A sign-up is an object holding strings and one list: two levels. Deeper bodies are
# refused before parsing (json's C parser recurses: ~1,000 levels is a RecursionError).
MAX_JSON_DEPTH = 8
EXAMPLE_ZONE = "Asia/Seoul"


def media_type(request: Request) -> str:
    """The request's Content-Type without parameters, lower case ("application/json" for
    ``Application/JSON; charset=utf-8``: media types are case-insensitive, RFC 9110 §8.3.1)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_form(request: Request, texts: Texts) -> FormData:
    try:
        return await request.form(max_files=0, max_fields=100)
    except HTTPException:
        raise HTTPException(400, texts("error.form_unreadable")) from None


def form_fields(form: FormData) -> dict[str, Any]:
    """A sign-up form as the fields a JSON sign-up has (``categories`` a list)."""
    fields: dict[str, Any] = {key: form.get(key) for key in form if key != "categories"}
    fields["categories"] = [str(v) for v in form.getlist("categories")]
    return fields


def json_depth(text: str) -> int:
    """How deep arrays and objects nest in ``text`` (brackets in strings skipped), without
    parsing it. A plain loop: linear in the body (a regex for strings backtracks
    quadratically on an unterminated one), under a millisecond for the 16 KB bodies taken."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def json_fields(body: bytes, texts: Texts) -> dict[str, Any]:
    """A JSON sign-up's fields."""
    too_deep = BadInput(texts("form.json_too_deep", max=MAX_JSON_DEPTH))
    try:
        # Decoded as json.loads decodes bytes (UTF-8, -16 or -32, by the first bytes).
        text = body.decode(json.detect_encoding(body), "surrogatepass")
        if json_depth(text) > MAX_JSON_DEPTH:
            raise too_deep
        parsed = json.loads(text)
    except RecursionError:  # a safety net: the depth check comes first
        raise too_deep from None
    except (ValueError, UnicodeDecodeError):
        raise BadInput(texts("form.json_unreadable")) from None
    if not isinstance(parsed, dict):
        raise BadInput(texts("form.json_not_object"))
    return parsed


def sign_up_from(fields: dict[str, Any], ip: str | None, texts: Texts) -> SignUp:
    email = fields.get("email")
    if not isinstance(email, str) or not email.strip():
        raise BadInput(texts("form.email_missing"), "email")
    try:
        address = normalise_address(email)
    except AddressError:
        raise BadInput(texts("form.email_invalid", value=email.strip()), "email") from None
    name = fields.get("name") or ""
    frequency = fields.get("frequency") or ""
    categories = fields.get("categories") or []
    if isinstance(categories, str):
        categories = [categories]
    if not isinstance(name, str) or not isinstance(frequency, str):
        raise BadInput(texts("form.not_text"))
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise BadInput(texts("form.categories_not_list"), CATEGORIES)
    try:
        cleaned = clean_name(name)
    except ValueError:
        raise BadInput(texts("form.name_invalid"), "name") from None
    return SignUp(
        email=address,
        name=cleaned,
        frequency=_frequency(frequency, texts),
        categories=_categories(categories, texts),
        ip=ip,
    )


def _frequency(raw: str, texts: Texts) -> Frequency:
    try:
        return parse_frequency(raw)
    except ValueError:
        raise BadInput(texts("form.frequency_invalid", value=raw.strip()), "frequency") from None


def _categories(raw: list[str], texts: Texts) -> tuple[str, ...]:
    if len(raw) > MAX_CATEGORIES:
        raise BadInput(texts("form.too_many_categories", max=MAX_CATEGORIES), CATEGORIES)
    try:
        return parse_categories(raw)
    except ValueError:
        raise BadInput(texts("form.categories_invalid"), CATEGORIES) from None


def _timezone(raw: str, texts: Texts) -> str | None:
    try:
        return parse_timezone(raw)
    except ValueError:
        example = zone_like(raw) or EXAMPLE_ZONE
        message = texts("form.timezone_unknown", value=raw.strip(), example=example)
        raise BadInput(message, "timezone") from None


@dataclass(frozen=True, slots=True)
class PreferencesForm:
    """What a preferences form holds, as sent (so that a refused form shows it again)."""

    frequency: str
    categories: tuple[str, ...]
    timezone: str

    @classmethod
    def of(cls, form: FormData) -> PreferencesForm:
        return cls(
            str(form.get("frequency") or "").strip(),
            tuple(str(v) for v in form.getlist("categories")),
            str(form.get("timezone") or "").strip(),
        )


@dataclass(frozen=True, slots=True)
class Preferences:
    frequency: Frequency
    categories: tuple[str, ...]
    timezone: str | None


def preferences_from(sent: PreferencesForm, texts: Texts) -> Preferences:
    """The preferences ``sent``, checked: a BadInput names the first field at fault."""
    return Preferences(
        _frequency(sent.frequency, texts),
        _categories(list(sent.categories), texts),
        _timezone(sent.timezone, texts),
    )


def check_categories(
    wanted: tuple[str, ...], site: SiteCategories, texts: Texts, *, kept: tuple[str, ...] = ()
) -> None:
    """BadInput naming the categories field when ``wanted`` holds a category no post has
    (in any spelling: ``Smart City`` = ``smart-city``). ``kept``: the subscriber's own
    categories, which may stay though no post has them (yet). A site without posts has
    nothing to check against: everything passes."""
    if site.empty:
        return
    own = SiteCategories.of(kept)
    unknown = [name for name in site.unknown(wanted) if not own.has(name)]
    if unknown:
        raise BadInput(texts("form.categories_unknown", categories=quoted(unknown)), CATEGORIES)
