"""Words of emails that depend on a number or a date, in the site's language: post counts
(the catalogue's plural forms) and dates. Pure.
"""

from __future__ import annotations

from datetime import datetime

from feedsvc.messages import Texts, catalogue_language

_KO_WEEKDAYS = "월화수목금토일"


def count_label(count: int, language: str) -> str:
    """'새 글 3편', '3 new posts', '1 new post'."""
    return Texts(language).plural("digest.new_posts", count)


def period_heading(frequency: str, language: str) -> str:
    """'오늘의 새 글', "Today's new posts", … for a digest of ``frequency``."""
    return Texts(language)(f"digest.heading.{frequency}")


def date_label(moment: datetime, language: str) -> str:
    """'2024년 6월 1일 (토)' for Korean sites, 'Sat, 1 June 2024' otherwise."""
    if catalogue_language(language) == "ko":
        weekday = _KO_WEEKDAYS[moment.weekday()]
        return f"{moment.year}년 {moment.month}월 {moment.day}일 ({weekday})"
    return f"{moment:%a}, {moment.day} {moment:%B} {moment.year}"
