"""The words of emails and pages in the site's language: Korean for ``ko*`` sites, else
English. Labels for the templates, post counts and dates; pure.
"""

from __future__ import annotations

from datetime import datetime

LABELS: dict[str, dict[str, str]] = {
    "ko": {
        "new_posts": "새 글 {count}편",
        "new_post": "새 글 1편",
        "read_more": "계속 읽기",
        "unsubscribe": "구독 해지",
        "preferences": "구독 설정 변경",
        "view_site": "사이트에서 모든 글 보기",
        "sent_to": "이 메일은 {email} 주소로 보내 드렸습니다.",
        "why": "{site}의 새 글 알림을 구독하셨습니다.",
        "immediate": "새 글 알림",
        "daily": "오늘의 새 글",
        "weekly": "이번 주 새 글",
        "confirm_subject": "{site} 구독을 확인해 주세요",
        "confirm_heading": "구독을 확인해 주세요",
        "confirm_body": "{site}의 새 글을 이메일로 받으시려면 아래 버튼을 눌러 주세요.",
        "confirm_button": "구독 확인",
        "confirm_expires": "이 링크는 {days}일 동안 유효합니다.",
        "confirm_ignore": "직접 신청하지 않으셨다면 이 메일을 무시하셔도 됩니다. "
        "확인하지 않으면 아무것도 보내지 않습니다.",
    },
    "en": {
        "new_posts": "{count} new posts",
        "new_post": "1 new post",
        "read_more": "Read more",
        "unsubscribe": "Unsubscribe",
        "preferences": "Change preferences",
        "view_site": "See every post on the site",
        "sent_to": "This email was sent to {email}.",
        "why": "You subscribed to new posts from {site}.",
        "immediate": "New post",
        "daily": "Today's new posts",
        "weekly": "This week's new posts",
        "confirm_subject": "Please confirm your subscription to {site}",
        "confirm_heading": "Please confirm your subscription",
        "confirm_body": "To receive new posts from {site} by email, press the button below.",
        "confirm_button": "Confirm subscription",
        "confirm_expires": "This link works for {days} days.",
        "confirm_ignore": "If you did not ask for this, ignore this email: "
        "nothing is sent unless you confirm.",
    },
}
_KO_WEEKDAYS = "월화수목금토일"


def labels_for(language: str) -> dict[str, str]:
    return LABELS["ko"] if language.lower().startswith("ko") else LABELS["en"]


def count_label(count: int, language: str) -> str:
    """'새 글 3편', '3 new posts', '1 new post'."""
    labels = labels_for(language)
    return labels["new_post"] if count == 1 else labels["new_posts"].format(count=count)


def date_label(moment: datetime, language: str) -> str:
    """'2024년 6월 1일 (토)' for Korean sites, 'Sat, 1 June 2024' otherwise."""
    if language.lower().startswith("ko"):
        weekday = _KO_WEEKDAYS[moment.weekday()]
        return f"{moment.year}년 {moment.month}월 {moment.day}일 ({weekday})"
    return f"{moment:%a}, {moment.day} {moment:%B} {moment.year}"
