"""The bounce inbox folder and the bounce mailbox, read together (the daemon's job and
`feedsvc bounces process`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime

from feedsvc.bounces.inbox import process_inbox
from feedsvc.bounces.mailbox import mailbox_options, read_mailbox
from feedsvc.bounces.process import matcher_for, policy_for
from feedsvc.bounces.report import InboxReport
from feedsvc.config import Settings
from feedsvc.storage import Store


def read_bounces(settings: Settings, store: Store, now: Callable[[], datetime]) -> InboxReport:
    """Read the bounce inbox folder and the bounce mailbox, those configured (the daemon's
    job and `feedsvc bounces process`). MailboxError when the mailbox cannot be read (the
    folder was read all the same); ConfigError when its settings are incomplete."""
    matcher, policy = matcher_for(settings, store), policy_for(settings)
    report = InboxReport()
    inbox = settings.bounces.inbox_dir
    if inbox is not None:
        report.add(process_inbox(store, settings.path(inbox), matcher, policy, now))
    options = mailbox_options(settings, os.environ)
    if options is not None:
        report.add(read_mailbox(store, options, matcher, policy, now))
    return report
