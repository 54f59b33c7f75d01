"""The query cache (query_service/cache.py): tags, global entries, TTL, LRU bound, holds, and
the cached answer service."""

from __future__ import annotations

import threading

import pytest

from query_service.answer.schemas import AnswerRequest, AnswerResponse
from query_service.cache import EVERYTHING, MAX_READ_S, CachedAnswers, TaggedCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float = 1.0) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_cache(clock: Clock, max_entries: int = 16, ttl_s: float = 60.0) -> TaggedCache:
    cache = TaggedCache(max_entries, ttl_s, clock=clock)
    cache.enable()
    return cache


def fill(cache: TaggedCache, clock: Clock, entries: dict[str, list[str] | None]) -> None:
    for key, videos in entries.items():
        started = cache.begin()
        clock.tick(0.01)
        assert cache.put(key, f"value of {key}", videos, started), key


def cached_keys(cache: TaggedCache, keys: list[str]) -> list[str]:
    return [key for key in keys if cache.get(key, str) is not None]


KEYS = ["moments:v1", "moments:v2", "moments:v1+v2", "videos:0:50"]
SCOPES: dict[str, list[str] | None] = {
    "moments:v1": ["v1"],
    "moments:v2": ["v2"],
    "moments:v1+v2": ["v1", "v2"],
    "videos:0:50": None,
}


def test_a_video_change_drops_its_entries_and_the_global_ones_only(clock: Clock) -> None:
    cache = make_cache(clock)
    fill(cache, clock, SCOPES)

    dropped = cache.invalidate_video("v1")

    assert dropped == 3
    assert cached_keys(cache, KEYS) == ["moments:v2"]


def test_a_global_entry_is_dropped_by_a_change_to_any_video(clock: Clock) -> None:
    cache = make_cache(clock)
    fill(cache, clock, {"videos:0:50": None, "answer:all": []})

    cache.invalidate_video("a-video-no-entry-names")

    assert cached_keys(cache, ["videos:0:50", "answer:all"]) == []


def test_invalidating_everything_drops_every_entry(clock: Clock) -> None:
    cache = make_cache(clock)
    fill(cache, clock, SCOPES)

    assert cache.invalidate(EVERYTHING) == 4
    assert cached_keys(cache, KEYS) == []


def test_entries_expire_after_the_ttl(clock: Clock) -> None:
    cache = make_cache(clock, ttl_s=30.0)
    fill(cache, clock, {"early": ["v1"]})
    clock.tick(20)
    fill(cache, clock, {"late": ["v1"]})

    clock.tick(10)

    assert cached_keys(cache, ["early", "late"]) == ["late"]
    assert cache.stats().entries == 1


def test_the_least_recently_used_entry_goes_when_the_cache_is_full(clock: Clock) -> None:
    cache = make_cache(clock, max_entries=3)
    fill(cache, clock, {"a": ["v1"], "b": ["v1"], "c": ["v1"]})
    assert cache.get("a", str) == "value of a"  # b is now the least recently used

    fill(cache, clock, {"d": ["v1"]})

    assert cached_keys(cache, ["a", "b", "c", "d"]) == ["a", "c", "d"]
    assert cache.stats().entries == 3


def test_a_read_that_started_before_a_change_is_not_stored(clock: Clock) -> None:
    cache = make_cache(clock)
    started = cache.begin()
    clock.tick()
    cache.invalidate_video("v1")
    clock.tick()

    assert cache.put("moments:v1", "old view", ["v1"], started) is False
    assert cache.put("moments:v2", "unrelated", ["v2"], started) is True
    assert cache.put("videos:0:50", "old list", None, started) is False
    assert cache.get("moments:v1", str) is None


def test_a_read_slower_than_the_change_log_reaches_is_not_stored(clock: Clock) -> None:
    cache = make_cache(clock)
    started = cache.begin()
    clock.tick(MAX_READ_S + 1)

    assert cache.put("moments:v1", "maybe stale", ["v1"], started) is False


def test_nothing_about_a_held_video_is_stored_until_it_is_released(clock: Clock) -> None:
    cache = make_cache(clock)
    fill(cache, clock, SCOPES)

    cache.hold("v1")
    after_hold = cache.begin()
    clock.tick()

    assert cached_keys(cache, KEYS) == ["moments:v2"]
    assert cache.put("moments:v1", "view before the write", ["v1"], after_hold) is False
    assert cache.put("videos:0:50", "list before the write", None, after_hold) is False
    assert cache.put("moments:v3", "unrelated", ["v3"], after_hold) is True
    assert cache.stats().held == ["v1"]

    cache.release("v1")
    clock.tick()
    after_release = cache.begin()
    clock.tick()

    assert cache.put("moments:v1", "read during the hold", ["v1"], after_hold) is False
    assert cache.put("moments:v1", "view after the write", ["v1"], after_release) is True
    assert cache.stats().held == []


def test_holding_everything_refuses_every_entry(clock: Clock) -> None:
    cache = make_cache(clock)
    cache.hold(EVERYTHING)
    clock.tick()

    assert cache.put("moments:v9", "x", ["v9"], cache.begin()) is False
    cache.release(EVERYTHING)
    clock.tick()
    assert cache.put("moments:v9", "x", ["v9"], cache.begin()) is True


def test_a_disabled_cache_misses_stores_nothing_and_forgets_what_it_had(clock: Clock) -> None:
    cache = TaggedCache(8, 60.0, clock=clock)
    assert cache.put("a", "x", ["v1"], cache.begin()) is False
    cache.enable()
    fill(cache, clock, {"a": ["v1"]})

    cache.disable()

    assert cache.get("a", str) is None
    assert cache.stats().entries == 0 and cache.stats().enabled is False


def test_a_value_of_another_kind_is_a_miss(clock: Clock) -> None:
    cache = make_cache(clock)
    fill(cache, clock, {"a": ["v1"]})

    assert cache.get("a", int) is None
    assert cache.get("a", str) == "value of a"
    assert (cache.stats().hits, cache.stats().misses) == (1, 1)


def test_the_cache_refuses_a_size_or_ttl_it_cannot_honour() -> None:
    with pytest.raises(ValueError, match="max_entries must be at least 1, got 0"):
        TaggedCache(0, 10.0)
    with pytest.raises(ValueError, match="ttl_s must be positive, got 0"):
        TaggedCache(10, 0)


def test_threads_filling_and_invalidating_at_once_keep_the_cache_whole() -> None:
    cache = TaggedCache(64, 60.0)
    cache.enable()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(2000):
                video = f"v{(n + i) % 5}"
                cache.put(f"{n}:{i}", i, [video], cache.begin())
                cache.get(f"{n}:{i - 1}", int)
        except BaseException as exc:
            errors.append(exc)

    def invalidator() -> None:
        try:
            for i in range(2000):
                cache.invalidate_video(f"v{i % 5}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    threads.append(threading.Thread(target=invalidator))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert cache.stats().entries <= 64
    cache.invalidate_all()
    assert cache.stats().entries == 0


# CachedAnswers -------------------------------------------------------------------------------
class CountingAnswers:
    """Answers with the question it was asked; counts how often it had to."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def answer(self, request: AnswerRequest) -> AnswerResponse:
        self.calls.append(request.question)
        return AnswerResponse(answer=f"answer {len(self.calls)}", citations=[], grounded=False)

    def retrieve(self, request: AnswerRequest) -> list[str]:
        return [f"retrieved for {request.question}"]


def ask(question: str, videos: list[str] | None = None, stream: bool = False) -> AnswerRequest:
    filters = {"video_ids": videos} if videos else {}
    return AnswerRequest.model_validate(
        {"question": question, "filters": filters, "stream": stream}
    )


def test_the_same_question_is_answered_once_whether_streamed_or_not(clock: Clock) -> None:
    service = CountingAnswers()
    answers = CachedAnswers(service, make_cache(clock))

    first = answers.answer(ask("who rides?", ["v1"]))
    second = answers.answer(ask("who rides?", ["v1"], stream=True))
    other = answers.answer(ask("who rides?", ["v2"]))

    assert (first.answer, second.answer, other.answer) == ("answer 1", "answer 1", "answer 2")
    assert service.calls == ["who rides?", "who rides?"]


def test_a_filtered_answer_is_recomputed_only_when_one_of_its_videos_changes(
    clock: Clock,
) -> None:
    service = CountingAnswers()
    cache = make_cache(clock)
    answers = CachedAnswers(service, cache)
    answers.answer(ask("who rides?", ["v1", "v2"]))
    clock.tick()

    cache.invalidate_video("v3")
    clock.tick()
    assert answers.answer(ask("who rides?", ["v1", "v2"])).answer == "answer 1"

    cache.invalidate_video("v2")
    clock.tick()
    assert answers.answer(ask("who rides?", ["v1", "v2"])).answer == "answer 2"


def test_an_unfiltered_answer_is_recomputed_when_any_video_changes(clock: Clock) -> None:
    service = CountingAnswers()
    cache = make_cache(clock)
    answers = CachedAnswers(service, cache)
    answers.answer(ask("who rides?"))
    clock.tick()
    assert answers.answer(ask("who rides?")).answer == "answer 1"

    cache.invalidate_video("a-new-video")
    clock.tick()

    assert answers.answer(ask("who rides?")).answer == "answer 2"


def test_the_wrapper_passes_other_calls_to_the_service(clock: Clock) -> None:
    answers = CachedAnswers(CountingAnswers(), make_cache(clock))

    assert answers.retrieve(ask("what?")) == ["retrieved for what?"]
