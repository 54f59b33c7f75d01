"""Retrieval quality on the visible evaluation set: Recall@1, Recall@5 and MRR.

    uv run python -m tests.eval.run [--only N] [--split tuning|heldout]
                                    [--endpoint search --endpoint hybrid]

Queries carry an optional ``split``: without one a query is in the tuning split (the set the
ranking was analysed and tuned on); ``heldout`` queries were written apart and only measured,
to show that a change generalises. The summary has a row per endpoint and split.

Ingests through the running stack (``vip upload``'s path: a VideoUploaded event) whatever of
the corpus is not indexed yet, then asks each endpoint every query, searching only the
corpus's videos so that other uploads in the same stack do not count.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.eval.metrics import first_relevant, mean_reciprocal_rank, recall_at
from vip.settings import Settings, load_settings

EVAL_SET = Path(__file__).with_name("queries.json")
REPO_ROOT = Path(__file__).resolve().parents[2]
MEDIA = Path(os.environ.get("VIP_MEDIA_DIR", REPO_ROOT.parent / "shared" / "media"))
ENDPOINTS = {"search": "/v1/search", "hybrid": "/v1/search/hybrid"}
INGEST_DEADLINE_S = 600.0
TOP_K = 5
TUNING = "tuning"
SPLITS = (TUNING, "heldout")


@dataclass(frozen=True)
class Scores:
    endpoint: str
    ranks: tuple[int | None, ...]

    @property
    def r1(self) -> float:
        return recall_at(self.ranks, 1)

    @property
    def r5(self) -> float:
        return recall_at(self.ranks, 5)

    @property
    def mrr(self) -> float:
        return mean_reciprocal_rank(self.ranks)


def split_of(item: dict[str, Any]) -> str:
    return str(item.get("split", TUNING))


def load_set(only: int | None = None, split: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(EVAL_SET.read_text())
    if split is not None:
        spec["queries"] = [q for q in spec["queries"] if split_of(q) == split]
    if only is not None:
        spec["queries"] = spec["queries"][:only]
        needed = {q["video"] for q in spec["queries"]}
        spec["corpus"] = [v for v in spec["corpus"] if v in needed]
    return spec


def _status(client: httpx.Client, video_id: str) -> dict[str, Any] | None:
    response = client.get(f"/v1/videos/{video_id}")
    return response.json() if response.status_code == 200 else None


def ingest(client: httpx.Client, settings: Settings, corpus: list[str]) -> dict[str, str]:
    """Media path -> video id, uploading (and waiting for) those not indexed yet."""
    from vip.upload import build_event, publish

    ids: dict[str, str] = {}
    waiting: dict[str, str] = {}
    for path in corpus:
        event = build_event(str(MEDIA / path), settings)
        ids[path] = event.video_id
        known = _status(client, event.video_id)
        if known is None or known["status"] != "completed" or not known.get("indexed_chunks"):
            publish(event, settings)
            waiting[path] = event.event_id
            print(f"ingesting {path} as {event.video_id}", flush=True)
    give_up = time.monotonic() + INGEST_DEADLINE_S
    while waiting:
        for path, upload_id in list(waiting.items()):
            known = _status(client, ids[path])
            if known and known.get("upload_id") == upload_id:
                if known["status"] == "failed":
                    raise RuntimeError(f"{path} failed to ingest: {known.get('error')}")
                if known["status"] == "completed":
                    del waiting[path]
        if time.monotonic() > give_up:
            raise TimeoutError(f"not indexed within {INGEST_DEADLINE_S:.0f} s: {sorted(waiting)}")
        time.sleep(1.0)
    return ids


def evaluate(
    client: httpx.Client, spec: dict[str, Any], ids: dict[str, str], endpoint: str
) -> tuple[Scores, list[str]]:
    ranks: list[int | None] = []
    lines: list[str] = []
    for item in spec["queries"]:
        response = client.post(
            ENDPOINTS[endpoint],
            json={
                "query": item["query"],
                "top_k": TOP_K,
                "filters": {"video_ids": sorted(set(ids.values()))},
            },
        )
        response.raise_for_status()
        results = [(m["video_id"], m["start"], m["end"]) for m in response.json()["data"]]
        rank = first_relevant(results, ids[item["video"]], item["start"], item["end"])
        ranks.append(rank)
        names = {v: k.split("/")[-1] for k, v in ids.items()}
        top = names.get(results[0][0], "?") if results else "-"
        lines.append(f"  {rank or '-':>2}  {item['query'][:52]:<52} -> top: {top}")
    return Scores(endpoint, tuple(ranks)), lines


def by_split(spec: dict[str, Any], scores: Scores) -> dict[str, Scores]:
    """The endpoint's scores over all queries and over each split present."""
    parts = {"all": scores}
    for split in SPLITS:
        ranks = [
            r for q, r in zip(spec["queries"], scores.ranks, strict=True) if split_of(q) == split
        ]
        if ranks and len(ranks) < len(scores.ranks):
            parts[split] = Scores(scores.endpoint, tuple(ranks))
    return parts


def run(
    only: int | None = None,
    endpoints: tuple[str, ...] = tuple(ENDPOINTS),
    split: str | None = None,
) -> list[Scores]:
    settings = load_settings()
    spec = load_set(only, split)
    with httpx.Client(base_url=settings.api_url, timeout=60) as client:
        ids = ingest(client, settings, spec["corpus"])
        results = []
        for endpoint in endpoints:
            scores, lines = evaluate(client, spec, ids, endpoint)
            print(f"{endpoint}: rank of the first relevant moment per query")
            print("\n".join(lines))
            results.append(scores)
    print(f"\n{len(spec['queries'])} queries over {len(spec['corpus'])} videos, top {TOP_K}")
    print(f"{'endpoint':<10} {'split':<8} {'n':>3} {'R@1':>6} {'R@5':>6} {'MRR':>6}")
    for scores in results:
        for name, s in by_split(spec, scores).items():
            print(
                f"{s.endpoint:<10} {name:<8} {len(s.ranks):>3} {s.r1:6.3f} {s.r5:6.3f} {s.mrr:6.3f}"
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", type=int, help="the first N queries only")
    parser.add_argument("--split", choices=SPLITS, help="one split only (default: all)")
    parser.add_argument("--endpoint", action="append", choices=sorted(ENDPOINTS))
    args = parser.parse_args()
    run(args.only, tuple(args.endpoint or ENDPOINTS), args.split)


if __name__ == "__main__":
    main()
