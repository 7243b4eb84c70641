"""config.yaml + environment → frozen, validated settings, and the slices of them that
pure modules take.

    the file (read_config) ─▶ + environment (with_environment) ─▶ Settings (pydantic)
                                                                  ─▶ slices (cached):
        parse_options   ParseOptions      reading and parsing a source file (content)
        liquid_options  LiquidOptions     Jekyll's Liquid in bodies (content.liquid): on or
                                          off, the site's variables (_config.yml read here)
        markup_options  MarkupOptions     a post's body → HTML and summary (content.markup)
        render_options  PostRenderOptions a post's file → its render (content.reading)
        feed_options    FeedOptions       planning and rendering feeds (feeds)
        digest_schedule DigestSchedule    when digests go out (newsletter.digests)

Every section and key of the README's configuration reference is here with the default
that makes the embedded set-up work. Unknown keys are errors (a typo must not pass
silently). Errors name the dotted key, the value given and what was expected. Relative
paths are resolved against the folder of the config file (the current folder when running
on embedded defaults).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from feedsvc.errors import ConfigError

CONFIG_ENV = "FEEDSVC_CONFIG"
STORAGE_URL_ENV = "FEEDSVC_STORAGE_URL"
DEFAULT_CONFIG = "config.yaml"

# --- the config file -----------------------------------------------------------------


@dataclass(frozen=True)
class ConfigFile:
    raw: dict[str, Any]  # the file's mapping (empty for the embedded defaults)
    base_dir: Path  # relative paths in it are below this folder
    source: str  # the file's path, or "embedded defaults"


def read_config(path: str | os.PathLike[str] | None = None) -> ConfigFile:
    """The config at ``path``, ``$FEEDSVC_CONFIG`` or ``./config.yaml``, unvalidated.

    With no path given and no ``./config.yaml``, the embedded defaults are used (an empty
    mapping). A path that was named explicitly and does not exist is an error.
    """
    explicit = path if path is not None else os.environ.get(CONFIG_ENV) or None
    config_path = Path(explicit) if explicit is not None else Path(DEFAULT_CONFIG)
    if not config_path.exists():
        if explicit is not None:
            raise ConfigError(
                str(config_path), ["the file does not exist (check --config or $FEEDSVC_CONFIG)"]
            )
        return ConfigFile({}, Path.cwd(), "embedded defaults")
    try:
        text = config_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(config_path), [f"cannot read the file: {exc}"]) from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError(str(config_path), [f"{where}not valid YAML: {exc}"]) from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(str(config_path), ["expected a mapping of sections (site:, content:, …)"])
    return ConfigFile(loaded, config_path.resolve().parent, str(config_path))


def with_environment(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with what the environment overrides (``$FEEDSVC_STORAGE_URL``)."""
    data = dict(raw)
    env_url = os.environ.get(STORAGE_URL_ENV)
    if env_url:
        storage = data.get("storage")
        data["storage"] = {**(storage if isinstance(storage, dict) else {}), "url": env_url}
    return data


# --- the settings --------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def _parse_duration(value: Any) -> Any:
    """'30s', '5m', '12h', '7d', '1w' or a number of seconds → timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 12h or 7d")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    raise ValueError("expected a duration such as 30s, 5m, 12h or 7d")


Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone name such as Asia/Seoul or UTC") from None
    return value


def _on_off(value: Any) -> Any:
    """YAML reads a bare on/off (and yes/no, true/false) as a boolean: the same choice."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AuthorSettings(_Section):
    name: str
    email: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("expected the author's name; leave site.author out for none")
        return value.strip()


class SiteSettings(_Section):
    title: str = "feedsvc"
    url: str = "http://127.0.0.1:8080/"
    description: str = ""
    language: str = "en"
    timezone: str = "UTC"
    # Who writes the posts, for feed entries whose front matter names no author; none
    # by default (entries then carry no author; Atom's feed-level one is the title).
    author: AuthorSettings | None = None
    # What {{ site.X }} gives in post bodies (with content.liquid on): wins over the
    # site's own _config.yml and over the built-in url, baseurl and title.
    vars: dict[str, Any] = {}

    @field_validator("url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("expected an absolute http(s) URL such as https://example.com/")
        return value if value.endswith("/") else value + "/"

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return _check_timezone(value)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$", value):
            raise ValueError("expected a language tag such as ko, en or ko-KR")
        return value


class ContentSettings(_Section):
    dir: Path = Path("content")
    extensions: tuple[str, ...] = (".md", ".markdown", ".html", ".txt")
    encoding: str = "utf-8"
    max_bytes: int = Field(default=5_000_000, gt=0)
    excerpt_separator: str = "<!--more-->"
    # A pattern of {placeholders} or Jekyll's :placeholders, or a Jekyll style (pretty …).
    permalink: str = "/{year}/{month}/{day}/{slug}/"
    # Entries published at the same moment (posts dated by day alone) are ordered by this
    # front-matter key (numbers numerically), greater first; "-key" for smaller first.
    order_by: str | None = None
    # The folder that root-relative asset URLs (/assets/img/x.png) map to; used for
    # enclosure lengths. Defaults to the site folder (where config.yaml lives).
    assets_dir: Path = Path(".")
    # Jekyll's Liquid in post bodies: "auto" runs it on a Jekyll site (a _config.yml at
    # the content folder or its parent, or a _posts folder), "on" always, "off" never (a
    # body's Liquid-looking text is then left exactly as written).
    liquid: Annotated[Literal["auto", "on", "off"], BeforeValidator(_on_off)] = "auto"

    @field_validator("extensions")
    @classmethod
    def _extensions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for ext in value:
            if not re.match(r"^\.[A-Za-z0-9]+$", ext):
                raise ValueError(f"expected extensions such as .md, got {ext!r}")
        return tuple(e.lower() for e in value)

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError("expected a Python codec name such as utf-8 or euc-kr") from None
        return value

    @field_validator("permalink")
    @classmethod
    def _permalink(cls, value: str) -> str:
        pattern = PERMALINK_STYLES.get(value, value)
        try:
            parts = permalink_parts(pattern, True)
        except ValueError as exc:
            raise ValueError(f"{exc}; {_PERMALINK_HELP}") from None
        names = {name for _, name in parts}
        if not pattern.startswith("/") or not names & {"slug", ":title", ":slug", ":name"}:
            raise ValueError(_PERMALINK_HELP)
        return pattern

    @field_validator("order_by")
    @classmethod
    def _order_by(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"-?[^\s:#\-][^\s:#]*", value):
            raise ValueError(
                "expected the name of a front-matter key such as archiveOrder or weight "
                "(a leading - reverses the order), or null"
            )
        return value


# --- permalink patterns (content.permalink, and a post's own permalink:) -------------------

# Jekyll's built-in styles: `permalink: pretty` in _config.yml works here as it is.
PERMALINK_STYLES = {
    "date": "/:categories/:year/:month/:day/:title:output_ext",
    "pretty": "/:categories/:year/:month/:day/:title/",
    "ordinal": "/:categories/:year/:y_day/:title:output_ext",
    "weekdate": "/:categories/:year/W:week/:short_day/:title:output_ext",
    "none": "/:categories/:title:output_ext",
}
# feedsvc's {placeholders}, and Jekyll's :placeholders (kept with their colon).
OWN_PLACEHOLDERS = ("year", "month", "day", "hour", "minute", "slug", "category", "title")
JEKYLL_PLACEHOLDERS = tuple(
    ":" + name
    for name in (
        "year", "short_year", "month", "i_month", "short_month", "long_month", "day",
        "i_day", "y_day", "w_year", "week", "w_day", "short_day", "long_day", "hour",
        "minute", "second", "title", "slug", "name", "categories", "slugified_categories",
        "collection", "output_ext",
    )
)  # fmt: skip
_KNOWN = frozenset(OWN_PLACEHOLDERS + JEKYLL_PLACEHOLDERS)
_PERMALINK_TOKEN = re.compile(r"\{(\w+)\}|:([a-z_]+)")
_PERMALINK_HELP = (
    "expected a pattern starting with / that names the post by {slug}, :title or :slug, "
    "using "
    + ", ".join("{" + n + "}" for n in OWN_PLACEHOLDERS)
    + " or Jekyll's "
    + ", ".join(JEKYLL_PLACEHOLDERS)
    + ", or one of Jekyll's styles "
    + ", ".join(PERMALINK_STYLES)
)


@lru_cache(maxsize=64)
def permalink_parts(pattern: str, strict: bool) -> tuple[tuple[str, str | None], ...]:
    """'/{year}/:title/' → (('/', 'year'), ('/', ':title'), ('/', None)): literal text,
    then the placeholder after it (Jekyll's with their colon). As Jekyll reads ':month_',
    a name ending in '_' that is unknown is the name without it, followed by '_'.

    ``strict``: an unknown name is a ValueError naming it (``content.permalink``); else
    it is literal text (a post's own permalink may hold a colon).
    """
    parts: list[tuple[str, str | None]] = []
    literal: list[str] = []
    position = 0
    for match in _PERMALINK_TOKEN.finditer(pattern):
        literal.append(pattern[position : match.start()])
        position = match.end()
        own, jekyll = match.groups()
        name = own if own is not None else ":" + jekyll
        tail = ""
        if name not in _KNOWN and jekyll is not None and name.endswith("_"):
            name, tail = name[:-1], "_"
        if name not in _KNOWN:
            if strict:
                shown = "{" + own + "}" if own is not None else match.group()
                raise ValueError(f"unknown placeholder {shown}")
            literal.append(match.group())
            continue
        parts.append(("".join(literal), name))
        literal = [tail]
    literal.append(pattern[position:])
    parts.append(("".join(literal), None))
    return tuple(parts)


# The video players most posts embed; their iframes stay in feeds (feeds.iframe_hosts).
IFRAME_HOSTS = ("www.youtube.com", "www.youtube-nocookie.com", "player.vimeo.com")


class FeedSettings(_Section):
    output_dir: Path = Path("public")
    limit: int = Field(default=20, gt=0, le=10_000)
    formats: tuple[Literal["rss", "atom", "json"], ...] = ("rss", "atom", "json")
    per_category: bool = True
    per_tag: bool = False
    websub_hub: str | None = None
    # What an entry's id is, unless its front matter sets `id:`: "permalink", its URL;
    # "jekyll-feed", jekyll-feed's (the URL without its extension); "tag", a tag: URI
    # (RFC 4151) dated the day the post was first seen. A post keeps the id it was first
    # published with while its URL stays (a reader would show it again as new).
    id_style: Literal["permalink", "jekyll-feed", "tag"] = "permalink"
    # Hosts whose <iframe> embeds stay in feed content; any other iframe becomes a link.
    iframe_hosts: tuple[str, ...] = IFRAME_HOSTS

    @field_validator("iframe_hosts")
    @classmethod
    def _iframe_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for host in value:
            if not re.match(r"^[A-Za-z0-9.-]+(:\d+)?$", host):
                raise ValueError(f"expected host names such as www.youtube.com, got {host!r}")
        return tuple(host.lower() for host in value)

    @field_validator("websub_hub")
    @classmethod
    def _hub(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("expected the hub's absolute http(s) URL, or null")
        return value


class StorageSettings(_Section):
    url: str = "sqlite:///feedsvc.db"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", value):
            raise ValueError("expected sqlite:///PATH or postgresql://USER@HOST/DB")
        return value


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class DigestSettings(_Section):
    from_: str = Field(default="feedsvc <feedsvc@localhost>", alias="from")
    # count_label is the catalogue's "3 new posts" / "새 글 3편": the default follows
    # site.language.
    subject: str = "{{ site.title }}: {{ count_label }}"
    send_time: str = "08:00"
    weekday: Weekday = "mon"
    max_posts: int = Field(default=20, gt=0)
    flood_limit: int = Field(default=50, gt=0)
    max_lateness: Duration = timedelta(hours=12)
    # A post that goes live dated more than this before the moment it went live is an
    # archive post: published in the feeds, mailed to nobody (0 turns the rule off).
    backdate_limit: Duration = timedelta(days=7)

    @field_validator("send_time")
    @classmethod
    def _send_time(cls, value: str) -> str:
        if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", value):
            raise ValueError("expected a time of day HH:MM such as 08:00")
        return value


class SmtpSettings(_Section):
    host: str = "localhost"
    port: int = Field(default=587, gt=0, lt=65536)
    tls: Literal["starttls", "implicit", "none"] = "starttls"
    username: str | None = None
    password_env: str = "FEEDSVC_SMTP_PASSWORD"
    timeout: Duration = timedelta(seconds=60)


class DkimSettings(_Section):
    domain: str | None = None
    selector: str | None = None
    private_key_path: Path | None = None


RETURN_PATH_TOKEN = "{token}"


def return_path_problem(template: str, mailbox: str = "bounces") -> str | None:
    """What is wrong with a VERP template (``delivery.return_path``,
    ``bounces.unsubscribe_address``), or None; ``mailbox`` names the example's mailbox."""
    local, at, domain = template.rpartition("@")
    if template.count(RETURN_PATH_TOKEN) != 1 or RETURN_PATH_TOKEN not in local:
        return f"expected one {{token}} before the @, as in '{mailbox}+{{token}}@news.example.kr'"
    if not at or not domain or "." not in domain or any(c in template for c in ' <>,;"\\'):
        return f"expected an address such as '{mailbox}+{{token}}@news.example.kr'"
    if len(local.replace(RETURN_PATH_TOKEN, "x" * 16)) > 64:
        return "the part before the @ is too long for an address (64 characters at most)"
    return None


class DeliverySettings(_Section):
    backend: Literal["outbox", "smtp"] = "outbox"
    outbox_dir: Path = Path("outbox")
    concurrency: int = Field(default=8, gt=0, le=256)
    rate: float = Field(default=100, gt=0)
    max_age: Duration = timedelta(days=5)
    bounce_limit: int = Field(default=1, gt=0)
    shutdown_grace: Duration = timedelta(seconds=30)
    smtp: SmtpSettings = SmtpSettings()
    dkim: DkimSettings = DkimSettings()
    # Beyond the original key set: the retry schedule (Postfix's minimal_backoff_time and
    # maximal_backoff_time), the claim lease, the per-connection message limit, and how
    # many processes `feedsvc digest send` sends from.
    min_backoff: Duration = timedelta(minutes=5)
    max_backoff: Duration = timedelta(hours=1)
    # Short, because a sender renews it every third of it while it holds rows: after a
    # crash, what the dead sender held goes out again this long after.
    lease: Duration = timedelta(seconds=30)
    messages_per_connection: int = Field(default=500, gt=0)
    workers: int = Field(default=1, gt=0, le=16)
    # VERP (delivery/return_path.py): each message's envelope sender names its delivery,
    # e.g. bounces+{token}@news.example.kr; unset: the From address, as before.
    return_path: str | None = None

    @field_validator("return_path")
    @classmethod
    def _verp_template(cls, value: str | None) -> str | None:
        problem = None if value is None else return_path_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("min_backoff", "max_backoff", "lease")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected a duration above zero, such as 5m")
        return value

    @field_validator("lease")
    @classmethod
    def _renewable(cls, value: timedelta) -> timedelta:
        # Renewed every third of it: shorter leases lapse whenever the store is slow.
        if value < timedelta(seconds=5):
            raise ValueError("expected at least 5s (a sender renews its lease every third of it)")
        return value

    @field_validator("max_backoff")
    @classmethod
    def _not_below_min(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        low = info.data.get("min_backoff")
        if low is not None and value < low:
            raise ValueError(f"expected at least delivery.min_backoff ({low.total_seconds():g} s)")
        return value


METRICS_TOKEN_MIN = 16


def check_metrics_token(value: str) -> str:
    """A bearer token fit for an HTTP header: printable ASCII, long enough not to guess."""
    if len(value) < METRICS_TOKEN_MIN or not re.fullmatch(r"[\x21-\x7e]+", value):
        raise ValueError(
            f"expected at least {METRICS_TOKEN_MIN} printable ASCII characters without spaces, "
            "such as the output of `openssl rand -hex 32` (null: /metrics for loopback only)"
        )
    return value


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, lt=65536)
    # Where email links (confirm, unsubscribe, preferences) point. Unset: the address
    # served (http://server.host:server.port/, as `feedsvc run --host/--port` changed
    # them), which is right on this machine only; see Settings.served_at.
    public_url: str = "http://127.0.0.1:8080/"
    # One log line per HTTP request (logger feedsvc.access; tokens in paths hidden).
    access_log: bool = False
    # GET /metrics: with a token (here, or in the variable metrics_token_env names, which
    # wins) only `Authorization: Bearer <token>` reads it; without, only a loopback peer
    # that sent no proxy header.
    metrics_token: str | None = None
    metrics_token_env: str = "FEEDSVC_METRICS_TOKEN"

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: str | None) -> str | None:
        return None if value is None else check_metrics_token(value)

    # Proxies whose X-Forwarded-For/-Proto are believed (addresses or networks, "*" for
    # any); empty: nobody's, the client is the TCP peer (issue 14, item 6).
    forwarded_allow_ips: tuple[str, ...] = ()
    # Confirmation emails queued per minute, all addresses together (sign-up floods).
    confirmations_per_minute: int = Field(default=30, ge=1, le=100_000)

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _proxies(cls, value: Any) -> Any:
        entries = value.split(",") if isinstance(value, str) else value
        if not isinstance(entries, list | tuple):
            return value
        proxies: list[str] = []
        for entry in (str(e).strip() for e in entries if str(e).strip()):
            try:
                proxies.append(
                    entry if entry == "*" else str(ipaddress.ip_network(entry, strict=False))
                )
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network; list your proxy's "
                    "addresses, e.g. [127.0.0.1, 10.0.0.0/8], or '*' for any"
                ) from None
        return tuple(proxies)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("expected an absolute http(s) URL such as https://example.com/")
        return value if value.endswith("/") else value + "/"


def served_url(host: str, port: Any) -> str:
    """``http://host:port/`` for a listening address; a wildcard host (0.0.0.0, ::) is
    shown as the loopback address, the one that surely reaches it from this machine."""
    shown = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host.strip(), host.strip())
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def is_loopback_url(url: str) -> bool:
    """True for a URL whose host is localhost or a loopback address."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


class MailboxSettings(_Section):
    """The bounce mailbox (bounces/mailbox.py); protocol null: none is read."""

    protocol: Literal["imap", "pop3"] | None = None
    host: str = "localhost"
    port: int | None = Field(default=None, gt=0, lt=65536)  # default: by protocol and tls
    tls: Literal["implicit", "starttls", "none"] = "implicit"
    username: str | None = None
    password_env: str = "FEEDSVC_BOUNCES_PASSWORD"
    folder: str = "INBOX"  # IMAP: where the bounces arrive
    processed_folder: str = "feedsvc-processed"  # IMAP: where read ones are moved
    timeout: Duration = timedelta(seconds=60)

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        implicit = self.tls == "implicit"
        if self.protocol == "pop3":
            return 995 if implicit else 110
        return 993 if implicit else 143


class SesWebhookSettings(_Section):
    topic_arns: tuple[str, ...] = ()  # the SNS topics SES publishes to; empty: no route
    certificate_hosts: tuple[str, ...] = ()  # trusted besides sns.*.amazonaws.com (tests)


class PostmarkWebhookSettings(_Section):
    username: str | None = None  # HTTP Basic user set in Postmark; null: no route
    password_env: str = "FEEDSVC_POSTMARK_WEBHOOK_PASSWORD"


class SendgridWebhookSettings(_Section):
    public_key: str | None = None  # the Signed Event Webhook's verification key; null: no route


class MailgunWebhookSettings(_Section):
    signing_key_env: str | None = None  # the variable holding the signing key; null: no route


class WebhookSettings(_Section):
    ses: SesWebhookSettings = SesWebhookSettings()
    postmark: PostmarkWebhookSettings = PostmarkWebhookSettings()
    sendgrid: SendgridWebhookSettings = SendgridWebhookSettings()
    mailgun: MailgunWebhookSettings = MailgunWebhookSettings()


class BounceSettings(_Section):
    """Mail that comes back after the relay said 250 (feedsvc/bounces/)."""

    # A folder of .eml files (one message each) the daemon and `feedsvc bounces process`
    # read: for an MTA that pipes the bounce address into it, and for tests.
    inbox_dir: Path | None = None
    interval: Duration = timedelta(minutes=1)  # how often the daemon looks
    soft_limit: int = Field(default=3, gt=0)  # soft bounces within soft_window → bounced
    soft_window: Duration = timedelta(days=30)
    # The List-Unsubscribe mailto: address, one per delivery (unsubscribe+{token}@…); mail
    # to it unsubscribes. Unset: no mailto is offered.
    unsubscribe_address: str | None = None
    mailbox: MailboxSettings = MailboxSettings()
    webhooks: WebhookSettings = WebhookSettings()

    @field_validator("unsubscribe_address")
    @classmethod
    def _unsubscribe_template(cls, value: str | None) -> str | None:
        problem = None if value is None else return_path_problem(value, "unsubscribe")
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("interval", "soft_window")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected a duration above zero, such as 1m or 30d")
        return value


class SecuritySettings(_Section):
    confirm_interval: Duration = timedelta(hours=1)
    confirm_max_age: Duration = timedelta(days=7)


class TemplateSettings(_Section):
    dir: Path | None = None


class Settings(_Section):
    site: SiteSettings = SiteSettings()
    content: ContentSettings = ContentSettings()
    feeds: FeedSettings = FeedSettings()
    storage: StorageSettings = StorageSettings()
    digest: DigestSettings = DigestSettings()
    delivery: DeliverySettings = DeliverySettings()
    server: ServerSettings = ServerSettings()
    security: SecuritySettings = SecuritySettings()
    templates: TemplateSettings = TemplateSettings()
    bounces: BounceSettings = BounceSettings()
    # Where the config file lives; relative paths above are resolved against it.
    base_dir: Path = Field(default=Path("."), exclude=True)
    source: str = Field(default="embedded defaults", exclude=True)
    # The keys of DERIVED_URLS the config left unset, filled from the served address.
    derived: frozenset[str] = Field(default=frozenset(), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _served_urls(cls, data: Any) -> Any:
        """Fill ``server.public_url`` and ``site.url`` when unset (or null) from the served
        address, and note which were filled (``derived``)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        server = data.get("server")
        server = dict(server) if isinstance(server, dict) else {}
        site = data.get("site")
        site = dict(site) if isinstance(site, dict) else {}
        derived: set[str] = set()
        if server.get("public_url") is None:
            host = server.get("host", ServerSettings.model_fields["host"].default)
            port = server.get("port", ServerSettings.model_fields["port"].default)
            server["public_url"] = served_url(str(host), port)
            derived.add("server.public_url")
        if site.get("url") is None:
            site["url"] = server["public_url"]
            derived.add("site.url")
        if "server" in data or "server.public_url" in derived:
            data["server"] = server
        if "site" in data or "site.url" in derived:
            data["site"] = site
        data["derived"] = frozenset(derived)
        return data

    def served_at(self, host: str, port: int) -> Settings:
        """These settings for a daemon that serves on ``host``:``port`` (``feedsvc run``'s
        --host/--port, or the port the system chose for 0): the URLs the config left unset
        follow that address."""
        server = self.server.model_copy(update={"host": host, "port": port})
        update: dict[str, Any] = {"server": server}
        if "server.public_url" in self.derived:
            server = server.model_copy(update={"public_url": served_url(host, port)})
            update["server"] = server
        if "site.url" in self.derived:
            update["site"] = self.site.model_copy(update={"url": server.public_url})
        return self.model_copy(update=update)

    @property
    def public_url_is_local(self) -> bool:
        """True when email links point at a loopback address (they work on this machine
        only)."""
        return is_loopback_url(self.server.public_url)

    @property
    def serves_site(self) -> bool:
        """True when the daemon is the site: ``site.url`` is at the origin of
        ``server.public_url`` (both unset, or set to the same address), so the daemon
        answers the posts' URLs with a post page."""
        return _origin(self.site.url) == _origin(self.server.public_url)

    def path(self, relative: Path) -> Path:
        """A configured path, absolute (relative ones are below the config's folder)."""
        return relative if relative.is_absolute() else self.base_dir / relative

    @property
    def content_dir(self) -> Path:
        return self.path(self.content.dir)

    @property
    def output_dir(self) -> Path:
        return self.path(self.feeds.output_dir)

    @property
    def assets_dir(self) -> Path:
        return self.path(self.content.assets_dir)

    @property
    def storage_url(self) -> str:
        """The store URL; a relative SQLite path is below the config's folder."""
        url, prefix = self.storage.url, "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix:
            rest = url[len(prefix) :]
            if not rest.startswith(":memory:"):
                return prefix + str((self.base_dir / rest).resolve())
        return url

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite store's file; None for PostgreSQL and an in-memory store."""
        url, prefix = self.storage_url, "sqlite:///"
        if not url.startswith(prefix) or url[len(prefix) :] in ("", ":memory:"):
            return None
        return Path(url[len(prefix) :].split("?", 1)[0])

    # The slices: each made once, on first use, and kept in the instance (a frozen model's
    # cached_property writes the instance's __dict__, which pydantic leaves to it).

    @cached_property
    def parse_options(self) -> ParseOptions:
        """What reading and parsing a source file needs of these settings (made once:
        every render asks)."""
        return ParseOptions(
            self.site.url,
            self.site.timezone,
            self.content.permalink,
            self.content.encoding,
            self.content.max_bytes,
            str(self.assets_dir),
            self.feeds.id_style,
            (self.content.order_by or "").lstrip("-") or None,
            self.liquid_options,
        )

    @cached_property
    def liquid_options(self) -> LiquidOptions:
        """Whether post bodies' Liquid runs (content.liquid), and with which site.*
        variables. Reads the Jekyll site's _config.yml (ConfigError naming its line)."""
        return liquid_options(
            self.content.liquid, self.content_dir, self.site.url, self.site.title, self.site.vars
        )

    @cached_property
    def markup_options(self) -> MarkupOptions:
        """What rendering a post's body needs of these settings."""
        return MarkupOptions(
            self.site.url,
            self.content.excerpt_separator,
            self.liquid_options,
            self.feeds.iframe_hosts,
        )

    @cached_property
    def render_options(self) -> PostRenderOptions:
        """What rendering a post from its file needs: sent to every render worker."""
        return PostRenderOptions(self.parse_options, self.markup_options)

    @cached_property
    def feed_options(self) -> FeedOptions:
        """What planning and rendering the feeds needs of these settings."""
        site, feeds = self.site, self.feeds
        return FeedOptions(
            site_url=site.url,
            title=site.title,
            description=site.description,
            language=site.language,
            author_name=site.author.name if site.author else None,
            author_email=site.author.email if site.author else None,
            limit=feeds.limit,
            formats=feeds.formats,
            per_category=feeds.per_category,
            per_tag=feeds.per_tag,
            websub_hub=feeds.websub_hub,
            order_by=self.content.order_by,
            timezone=site.timezone,
            iframe_hosts=feeds.iframe_hosts,
        )

    @cached_property
    def digest_schedule(self) -> DigestSchedule:
        """When daily and weekly digests go out."""
        hour, minute = (int(part) for part in self.digest.send_time.split(":"))
        return DigestSchedule(
            send_time=time(hour, minute),
            weekday=WEEKDAYS.index(self.digest.weekday),
            site_timezone=self.site.timezone,
            max_lateness=self.digest.max_lateness,
        )

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; with ``update``, without the slices made from the old values (pydantic
        copies the instance's __dict__, where they are kept)."""
        copied = super().model_copy(update=update, deep=deep)
        if update:
            for name in _SLICES:
                copied.__dict__.pop(name, None)
        return copied


_SLICES = (
    "liquid_options",
    "parse_options",
    "markup_options",
    "render_options",
    "feed_options",
    "digest_schedule",
)


# --- slices of the settings, for pure modules ------------------------------------------
# Plain values, made once from the settings: a module that takes one runs, and is tested,
# without the whole Settings.


@dataclass(frozen=True, slots=True)
class LiquidOptions:
    """Jekyll's Liquid in post bodies (``content.liquid``): whether it runs, and what
    ``{{ site.X }}``, ``| absolute_url`` and ``{% link %}`` resolve against."""

    enabled: bool = False
    site_url: str = ""  # ends in "/": where relative_url / absolute_url point below
    # site.X: the _config.yml's values, then url, baseurl and title, then site.vars.
    site_vars: Mapping[str, Any] = field(default_factory=dict)
    link_prefix: str = ""  # the content folder below the Jekyll site's root ("_posts/")
    config_file: str = ""  # the _config.yml read, if any (for messages)


LIQUID_OFF = LiquidOptions()
JEKYLL_CONFIGS = ("_config.yml", "_config.yaml", "_config.toml")


def liquid_options(
    mode: str, content_dir: Path, site_url: str, title: str, own_vars: Mapping[str, Any]
) -> LiquidOptions:
    """``content.liquid`` resolved: "auto" is on for a Jekyll site — a _config.yml (or
    .yaml, .toml) in the content folder or its parent, or a _posts folder in it, or the
    content folder being _posts — and off otherwise."""
    if mode == "off":
        return LIQUID_OFF
    root, config = _jekyll_root(content_dir)
    if mode == "auto" and root is None:
        return LIQUID_OFF
    if root is None:
        root = content_dir.parent if content_dir.name == "_posts" else content_dir
    from_file = _jekyll_config(config) if config is not None else {}
    split = re.match(r"(https?://[^/]+)(/.*)?$", site_url)
    origin, path = (split.group(1), split.group(2) or "/") if split else (site_url, "/")
    builtins = {"url": origin, "baseurl": path.rstrip("/"), "title": title}
    prefix = ""
    if content_dir != root:
        with_root = content_dir.relative_to(root) if content_dir.is_relative_to(root) else None
        prefix = with_root.as_posix() + "/" if with_root is not None else ""
    return LiquidOptions(
        True,
        site_url,
        {**from_file, **builtins, **own_vars},
        prefix,
        str(config) if config is not None else "",
    )


def _jekyll_root(content_dir: Path) -> tuple[Path | None, Path | None]:
    """The Jekyll site's root folder and its config file, when this looks like one."""
    for folder in (content_dir, content_dir.parent):
        for name in JEKYLL_CONFIGS:
            if (folder / name).is_file():
                return folder, folder / name
    if (content_dir / "_posts").is_dir():
        return content_dir, None
    if content_dir.name == "_posts" and content_dir.is_dir():
        return content_dir.parent, None
    return None, None


def _jekyll_config(path: Path) -> dict[str, Any]:
    """A Jekyll _config.yml (or .toml) as a mapping; a ConfigError naming its line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc}"]) from None
    if path.suffix == ".toml":
        import tomllib

        try:
            loaded: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            found = re.search(r"at line (\d+)", str(exc))
            where = f"{path}:{found.group(1)}" if found else str(path)
            raise ConfigError(where, [f"not valid TOML: {exc}; fix this line"]) from None
    else:
        try:
            loaded = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(
                where,
                [
                    f"not valid YAML ({problem}); fix this line (the site's Jekyll config, "
                    "read for {{ site.X }} in posts; content.liquid: off skips it)"
                ],
            ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(str(path), ["expected key: value pairs (Jekyll's site settings)"])
    return {str(key): value for key, value in loaded.items()}


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """What reading and parsing a source file depends on (``front_matter``, ``posts``,
    ``reading``): sent to every parse worker, so small."""

    site_url: str  # ends in "/"
    timezone: str  # IANA name, for dates written without a zone
    permalink: str  # content.permalink
    encoding: str  # content.encoding
    max_bytes: int  # content.max_bytes
    assets_dir: str  # absolute: where root-relative asset URLs point (enclosure lengths)
    id_style: str = "permalink"  # feeds.id_style
    order_by: str | None = None  # content.order_by's key (without its '-')
    liquid: LiquidOptions = LIQUID_OFF  # a body's Liquid is checked when the file is read


@dataclass(frozen=True, slots=True)
class MarkupOptions:
    """What rendering a post's body to HTML and a summary depends on (``markup``)."""

    site_url: str  # ends in "/": what root-relative URLs resolve against
    excerpt_separator: str  # content.excerpt_separator ("" for none)
    liquid: LiquidOptions = LIQUID_OFF
    # feeds.iframe_hosts: the post's HTML is sanitised for feeds when it is rendered
    iframe_hosts: tuple[str, ...] = IFRAME_HOSTS


@dataclass(frozen=True, slots=True)
class PostRenderOptions:
    """What rendering a post from its file depends on (``reading.render_batch``): reading it
    again, then rendering its body. Sent to every render worker, so small."""

    parse: ParseOptions
    markup: MarkupOptions
    # {% link %} and {% post_url %} targets → URLs (content.liquid.link_table), known
    # once the build has settled which posts are live; empty with Liquid off.
    links: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FeedOptions:
    """What planning the feeds and rendering them into bytes depends on (``feeds.plan``,
    ``feeds.render``): the site's ``site.*`` and ``feeds.*`` values."""

    site_url: str  # ends in "/": the home page, and where the output dir is published
    title: str
    description: str  # "" for none (the title stands in)
    language: str
    author_name: str | None  # site.author.name; None: no site author
    author_email: str | None
    limit: int  # posts per feed
    formats: tuple[Literal["rss", "atom", "json"], ...]
    per_category: bool
    per_tag: bool
    websub_hub: str | None
    order_by: str | None = None  # content.order_by: ties of the same moment, then the slug
    timezone: str = "UTC"  # site.timezone: the offset dates are written in
    iframe_hosts: tuple[str, ...] = IFRAME_HOSTS  # feeds.iframe_hosts


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    """When daily and weekly digests go out (``digest.*``, ``newsletter.digests``)."""

    send_time: time
    weekday: int  # Monday = 0
    site_timezone: str
    max_lateness: timedelta


# --- validating ----------------------------------------------------------------------


def _format_error(error: Any, raw: dict[str, Any]) -> str:
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc) if loc else "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key (check its spelling; see docs/configuration.md for every key)"
    value: Any = raw
    for part in error["loc"]:
        if (isinstance(value, dict) and part in value) or (
            isinstance(value, list) and isinstance(part, int) and part < len(value)
        ):
            value = value[part]
        else:
            value = None
            break
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    shown = "(missing)" if value is None and error["type"] == "missing" else repr(value)
    return f"{key} = {shown}: {message}"


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read settings from ``path``, ``$FEEDSVC_CONFIG`` or ``./config.yaml``.

    With no path given and no ``./config.yaml``, the embedded defaults are used. A path
    that was named explicitly and does not exist is an error.
    """
    config = read_config(path)
    settings = settings_from_mapping(config.raw, base_dir=config.base_dir, source=config.source)
    settings.liquid_options  # noqa: B018 -- a broken _config.yml is an error now, not mid-build
    return settings


def settings_from_mapping(
    raw: dict[str, Any], *, base_dir: Path = Path("."), source: str = "mapping"
) -> Settings:
    """Validate a mapping shaped like config.yaml (used by tests and ``load_settings``)."""
    data = with_environment(raw)
    try:
        return Settings.model_validate({**data, "base_dir": base_dir, "source": source})
    except ValidationError as exc:
        problems = [_format_error(e, data) for e in exc.errors()]
        raise ConfigError(source, problems) from None
