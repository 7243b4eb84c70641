"""How a big build shares its feeds out between the main process and a worker."""

from __future__ import annotations

from feedsvc.build.render import _split
from feedsvc.feeds.plan import FeedSpec


def _feed(name: str, ids: range) -> FeedSpec:
    return FeedSpec(f"categories/{name}/", name, name, "category", name, tuple(map(str, ids)))


def test_every_feed_goes_to_one_half_and_shared_posts_stay_together() -> None:
    site = FeedSpec("", "부산", "", "site", None, tuple(map(str, range(0, 20))))
    plan = [site] + [_feed(f"분류{i}", range(i * 20, i * 20 + 20)) for i in range(10)]
    plan.append(_feed("겹침", range(5, 25)))  # overlaps the site feed's posts
    near, far = _split(plan)
    assert sorted(s.path for s in near + far) == sorted(s.path for s in plan)
    shown = [{p for s in half for p in s.post_ids} for half in (near, far)]
    assert len(shown[0]) <= len(shown[1]) <= len(shown[0]) + 20  # about even, smaller first
    # The feeds that share posts with the site feed went with it.
    home = next(i for i, half in enumerate((near, far)) if site in half)
    assert {"categories/분류0/", "categories/겹침/"} <= {s.path for s in (near, far)[home]}
    assert len(shown[0] & shown[1]) <= 5  # 겹침 spans two halves whichever way it goes
