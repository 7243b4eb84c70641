"""What a build did: counts, problems, feed files written, timings; and its stored record."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from feedsvc.models import Problem, Severity
from feedsvc.storage.posts import BuildRecord


@dataclass
class BuildReport:
    started: datetime
    finished: datetime | None = None
    files: int = 0
    parsed: int = 0
    published: int = 0
    drafts: int = 0  # good posts marked draft: not published
    scheduled: int = 0  # good posts dated in the future: published at their time
    rendered: int = 0
    feeds_written: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    next_publish: datetime | None = None
    outputs: str | None = None  # JSON record of the feed files written (see Builder._outputs)
    announced: list[str] = field(default_factory=list)  # post ids new for the digests
    feeds_rendered: int = 0  # feeds (site, category, tag) rendered, not reused
    # Wall time of each phase in seconds, for `feedsvc build -v` and benchmarks.
    timings: dict[str, float] = field(default_factory=dict)

    def lap(self, phase: str, since: float) -> float:
        """Record the time since ``since`` as ``phase``; returns now for the next lap."""
        now = time.perf_counter()
        self.timings[phase] = now - since
        return now

    @property
    def errors(self) -> int:
        return sum(1 for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for p in self.problems if p.severity is Severity.WARNING)


def build_record(report: BuildReport) -> BuildRecord:
    assert report.finished is not None
    return BuildRecord(
        started_at=report.started,
        finished_at=report.finished,
        files=report.files,
        parsed=report.parsed,
        published=report.published,
        rendered=report.rendered,
        feeds_written=len(report.feeds_written),
        errors=report.errors,
        warnings=report.warnings,
        problems=tuple(report.problems),
        next_publish=report.next_publish,
        outputs=report.outputs,
    )
