"""Who every message from this site is from: the site as templates see it, and the header
values all its messages share (From, Date in the site's zone, the Message-ID domain,
List-Id, and the RFC 8058 one-click unsubscribe). Pure: settings in, strings out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parseaddr
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from feedsvc.config import Settings
from feedsvc.delivery.mime import MAX_LINE, ascii_address, clean_header_text, format_address, phrase
from feedsvc.errors import ConfigError

ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058: the List-Unsubscribe-Post value


@dataclass(frozen=True, slots=True)
class SiteView:
    title: str
    url: str
    description: str
    language: str


@dataclass(frozen=True, slots=True)
class Sender:
    """What every message from this site shares (``site.*``, ``digest.*``)."""

    site: SiteView
    from_name: str
    from_address: str
    subject_template: str
    public_url: str
    timezone: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Sender:
        name, address = parseaddr(settings.digest.from_)
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            raise ConfigError(
                settings.source,
                [
                    f"digest.from = {settings.digest.from_!r}: expected a sender such as "
                    "'부산 시정 소식 <news@example.kr>'"
                ],
            )
        return cls(
            site=SiteView(
                title=settings.site.title,
                url=settings.site.url,
                description=settings.site.description,
                language=settings.site.language,
            ),
            from_name=name,
            from_address=address,
            subject_template=settings.digest.subject,
            public_url=settings.server.public_url,
            timezone=settings.site.timezone,
        )

    @property
    def domain(self) -> str:
        return ascii_address(self.from_address).rpartition("@")[2].lower()

    @property
    def list_id(self) -> str:
        host = (urlsplit(self.site.url).hostname or "localhost").lower()
        host = ascii_address("x@" + host).rpartition("@")[2]
        return f"digest.{host}"

    def from_header(self) -> str:
        """The ``From`` value, encoded."""
        return format_address(self.from_name, self.from_address, "From")

    def date_header(self, moment: datetime) -> str:
        """The ``Date`` value: ``moment`` in the site's zone."""
        return format_datetime(moment.astimezone(ZoneInfo(self.timezone)))

    def list_id_header(self) -> str:
        """The ``List-Id`` value: the site's title as the list's name (RFC 2919)."""
        name = phrase(clean_header_text(self.site.title), MAX_LINE - len("List-Id: "))
        return f"{name} <{self.list_id}>"
