"""What the subscriber sends: form and JSON bodies read, and their fields checked into a
sign-up or a change of preferences. Any problem is a :class:`BadInput` whose message is
shown to the subscriber as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from feedsvc.errors import AddressError, BadInput
from feedsvc.models import Frequency
from feedsvc.newsletter.categories import SiteCategories, quoted
from feedsvc.newsletter.confirmations import SignUp
from feedsvc.newsletter.subscribers import (
    clean_name,
    normalise_address,
    parse_categories,
    parse_frequency,
    parse_timezone,
)

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
CATEGORIES = "categories"  # the field
HONEYPOT = "website"
MAX_CATEGORIES = 50
# A sign-up is an object holding strings and one list: two levels. Deeper bodies are
# refused before parsing (json's C parser recurses: ~1,000 levels is a RecursionError).
MAX_JSON_DEPTH = 8
EXPIRED_FORM = "양식이 만료되었습니다. 페이지를 새로 고친 뒤 다시 보내 주세요."


def media_type(request: Request) -> str:
    """The request's Content-Type without parameters, lower case ("application/json" for
    ``Application/JSON; charset=utf-8``: media types are case-insensitive, RFC 9110 §8.3.1)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_form(request: Request) -> FormData:
    try:
        return await request.form(max_files=0, max_fields=100)
    except HTTPException:
        raise HTTPException(400, "양식을 읽을 수 없습니다.") from None


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


def json_fields(body: bytes) -> dict[str, Any]:
    """A JSON sign-up's fields."""
    too_deep = BadInput(
        f"JSON이 너무 깊게 중첩되어 있습니다 (최대 {MAX_JSON_DEPTH}단계). "
        "email, name, frequency, categories를 담은 객체 하나로 보내 주세요."
    )
    try:
        # Decoded as json.loads decodes bytes (UTF-8, -16 or -32, by the first bytes).
        text = body.decode(json.detect_encoding(body), "surrogatepass")
        if json_depth(text) > MAX_JSON_DEPTH:
            raise too_deep
        parsed = json.loads(text)
    except RecursionError:  # a safety net: the depth check comes first
        raise too_deep from None
    except (ValueError, UnicodeDecodeError):
        raise BadInput("JSON을 읽을 수 없습니다.") from None
    if not isinstance(parsed, dict):
        raise BadInput("JSON 객체로 보내 주세요.")
    return parsed


def sign_up_from(fields: dict[str, Any], ip: str | None) -> SignUp:
    email = fields.get("email")
    if not isinstance(email, str) or not email.strip():
        raise BadInput("이메일 주소를 입력해 주세요.")
    try:
        address = normalise_address(email)
    except AddressError:
        raise BadInput("이메일 주소의 형식이 올바르지 않습니다. 다시 확인해 주세요.") from None
    name = fields.get("name") or ""
    frequency = fields.get("frequency") or ""
    categories = fields.get("categories") or []
    if isinstance(categories, str):
        categories = [categories]
    if not isinstance(name, str) or not isinstance(frequency, str):
        raise BadInput("이름과 받는 주기는 글자로 보내 주세요.")
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise BadInput("분류는 글자의 목록으로 보내 주세요.")
    if len(categories) > MAX_CATEGORIES:
        raise BadInput(f"분류는 {MAX_CATEGORIES}개까지 고를 수 있습니다.")
    try:
        return SignUp(
            email=address,
            name=clean_name(name),
            frequency=parse_frequency(frequency),
            categories=parse_categories(categories),
            ip=ip,
        )
    except ValueError:
        raise BadInput("받는 주기, 이름 또는 분류가 올바르지 않습니다.") from None


@dataclass(frozen=True, slots=True)
class Preferences:
    frequency: Frequency
    categories: tuple[str, ...]
    timezone: str | None


def preferences_from(form: FormData) -> Preferences:
    try:
        frequency = parse_frequency(str(form.get("frequency") or ""))
        categories = parse_categories([str(v) for v in form.getlist("categories")])
        timezone = parse_timezone(str(form.get("timezone") or ""))
        if len(categories) > MAX_CATEGORIES:
            raise ValueError("too many categories")
    except ValueError:
        raise BadInput("받는 주기, 분류 또는 시간대가 올바르지 않습니다.") from None
    return Preferences(frequency, categories, timezone)


def check_categories(
    wanted: tuple[str, ...], site: SiteCategories, *, kept: tuple[str, ...] = ()
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
        raise BadInput(
            f"관심 분류({CATEGORIES})에 이 사이트에 없는 분류가 있습니다: {quoted(unknown)}. "
            "목록에 있는 분류 중에서 골라 주세요.",
            CATEGORIES,
        )
