"""Retrieval quality offline, on the eval set (tests/eval/queries.json), per split.

    uv run python bench/recall_probe.py [--retag] [--show tuning|heldout]

Reads what the running stack stored for the eval corpus (the Milvus rows with their vectors,
the analysis cache in the blob store) and embeds the queries with Triton's text_embedding,
then ranks exactly (cosine in numpy, as the FLAT indexes do) and prints R@1, R@5 and MRR per
split for

* query-side orders of /v1/search's candidates: best cosine (the order before), the re-ranking
  of query_service.retrieval.fusion.rank_vector_hits (after) and its parts, and alternatives
  that were measured and not taken;
* ingestion-side changes, prototyped without touching the embedding stage: moment vectors
  rebuilt from the stored analyses by the stage's own pure code, with ConSE's class names
  embedded with their WordNet gloss, and (``--retag``, runs image_tags on the stored
  keyframes) ConSE over each keyframe's top 10 ImageNet classes without a score floor, as in
  the paper. The first row rebuilds the stored vectors unchanged, as a check.

``--show`` prints, for one split, each query's rank and what came first. Writes nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from agents.embedding.conse import (
    DETECTION_SHARE,
    TAG_SHARE,
    TEXT_WEIGHT,
    VISUAL_WEIGHT,
    concept_weights,
    conse_vector,
    fuse,
    visual_concepts,
)
from agents.embedding.core import describe, words_in_moment
from agents.shared.milvus_store import GRPC_OPTIONS, collection_name, id_literal
from agents.shared.triton_client import TritonClient
from query_service.retrieval.fusion import (
    Candidate,
    Fused,
    content_key,
    diversify,
    lexical_boost,
    merge_best,
    rank_vector_hits,
)
from query_service.retrieval.index import MomentIndex
from query_service.retrieval.terms import keywords
from streams.records import ChunkAnalysed
from tests.eval.metrics import first_relevant, mean_reciprocal_rank, recall_at
from tests.eval.run import MEDIA, SPLITS, load_set, split_of
from vip.settings import Settings, load_settings
from vip.upload import build_event

TOP_K = 5
IMAGENET_INFO = "venvs/triton/lib/python3.11/site-packages/timm/data/_info"
Order = Callable[[list[Fused], str], list[Fused]]


@dataclass(frozen=True)
class Corpus:
    moments: list[Candidate]
    analyses: list[ChunkAnalysed]
    text: np.ndarray  # unit rows, one per moment, as stored
    multimodal: np.ndarray
    names: dict[str, str]  # video id -> media path


class Embedder:
    """Triton's text_embedding with a cache, unit-length rows."""

    def __init__(self, triton: TritonClient) -> None:
        self._triton = triton
        self._known: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._known]
        for start in range(0, len(missing), 64):
            batch = missing[start : start + 64]
            for text, vector in zip(batch, self._triton.embed_texts(batch), strict=True):
                self._known[text] = unit(np.asarray(vector, np.float64))
        return np.array([self._known[t] for t in texts])


def unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=-1, keepdims=True), 1e-12)


def load_corpus(settings: Settings, spec: dict[str, Any]) -> Corpus:
    from pymilvus import MilvusClient

    names = {build_event(str(MEDIA / p), settings).video_id: p for p in spec["corpus"]}
    client = MilvusClient(uri=settings.milvus_uri, timeout=10.0, grpc_options=GRPC_OPTIONS)
    expression = f"video_id in [{', '.join(id_literal(v) for v in names)}]"
    fields = ["id", "video_id", "source", "start", "end", "text", "labels", "thumbnail", "vector"]
    rows: dict[str, list[dict[str, Any]]] = {}
    for kind in ("text", "multimodal"):
        found = client.query(
            collection_name(settings.milvus_collection, kind),
            filter=expression,
            output_fields=fields,
            limit=16384,
        )
        # Plain dicts first: pymilvus's rows read their vectors lazily by position.
        plain = [{**dict(r), "vector": list(r["vector"])} for r in found]
        rows[kind] = sorted(plain, key=lambda r: str(r["id"]))
    client.close()
    if [r["id"] for r in rows["text"]] != [r["id"] for r in rows["multimodal"]]:
        raise RuntimeError("the text and multimodal collections hold different moments")
    moments = [
        Candidate(
            id=str(r["id"]),
            video_id=str(r["video_id"]),
            source=str(r["source"]),
            start=float(r["start"]),
            end=float(r["end"]),
            text=str(r["text"]),
            labels=tuple(label for label in str(r["labels"]).split(",") if label),
            thumbnail=str(r["thumbnail"]),
            score=0.0,
        )
        for r in rows["text"]
    ]
    return Corpus(
        moments=moments,
        analyses=stored_analyses(settings, moments),
        text=unit(np.array([r["vector"] for r in rows["text"]], np.float64)),
        multimodal=unit(np.array([r["vector"] for r in rows["multimodal"]], np.float64)),
        names=names,
    )


def stored_analyses(settings: Settings, moments: Sequence[Candidate]) -> list[ChunkAnalysed]:
    """Each moment's newest analysis in the analysis cache (same video and start)."""
    newest: dict[tuple[str, float], ChunkAnalysed] = {}
    for video_id in {m.video_id for m in moments}:
        for path in (settings.blobs_dir / "analysis-cache" / video_id).glob("*.json"):
            analysis = ChunkAnalysed.model_validate(orjson.loads(path.read_bytes()))
            key = (video_id, round(analysis.span.start, 3))
            if key not in newest or analysis.occurred_at > newest[key].occurred_at:
                newest[key] = analysis
    return [newest[(m.video_id, round(m.start, 3))] for m in moments]


# Ingestion-side prototypes ----------------------------------------------------------------------
def glosses(settings: Settings) -> dict[str, str]:
    """ImageNet class name (first lemma) -> "name: WordNet definition", from timm's files."""
    info = settings.cache_dir / IMAGENET_INFO
    lemmas = dict(line.split("\t", 1) for line in (info / "imagenet_synset_to_lemma.txt").open())
    define = dict(
        line.split("\t", 1) for line in (info / "imagenet_synset_to_definition.txt").open()
    )
    return {
        lemmas[s].split(",")[0].strip(): f"{lemmas[s].split(',')[0].strip()}: {define[s].strip()}"
        for s in (info / "imagenet_synsets.txt").read_text().split()
    }


def retagged(triton: TritonClient, analysis: ChunkAnalysed) -> list[tuple[float, str, float]]:
    """(time, class, probability) of each keyframe's top 10 ImageNet classes, no floor."""
    from agents.analysis.inference.tags_and_slots import tag_images

    images = [Path(k.uri.removeprefix("file://")).read_bytes() for k in analysis.keyframes]
    tags = tag_images(triton, images, 10, 0.0)
    return [
        (k.time, t.label, t.score)
        for k, ts in zip(analysis.keyframes, tags, strict=True)
        for t in ts
    ]


def multimodal_vector(
    analysis: ChunkAnalysed,
    embed: Embedder,
    class_text: Mapping[str, str],
    tags_seen: Iterable[tuple[float, str, float]] | None = None,
) -> np.ndarray:
    """agents.embedding's ConSE vector, with each class embedded as ``class_text`` says and,
    when given, other tag observations."""
    tags, objects = visual_concepts(analysis)
    if tags_seen is not None:
        tags = concept_weights(tags_seen, max(1, len(analysis.keyframes)))
    names = [*tags, *objects]
    vectors = dict(zip(names, embed([class_text.get(n, n) for n in names]), strict=True))
    seen = fuse(
        [
            (TAG_SHARE, conse_vector(tags, vectors) if tags else None),
            (DETECTION_SHARE, conse_vector(objects, vectors) if objects else None),
        ]
    )
    words = words_in_moment(analysis)
    mixed = fuse([(VISUAL_WEIGHT, seen), (TEXT_WEIGHT, embed([words])[0] if words else None)])
    return np.zeros(embed(["x"]).shape[1]) if mixed is None else mixed


# Ranking and scoring ----------------------------------------------------------------------------
def vector_hits(corpus: Corpus, text: np.ndarray, multimodal: np.ndarray) -> list[Fused]:
    """/v1/search's candidates for one query: both collections' moments, merged by best cosine."""
    lists = {
        kind: sorted(
            (replace(m, score=float(s)) for m, s in zip(corpus.moments, scores, strict=True)),
            key=lambda c: -c.score,
        )
        for kind, scores in (("text", text), ("multimodal", multimodal))
    }
    return merge_best(lists)


def weighted(text_weight: float) -> Order:
    def order(hits: list[Fused], query: str) -> list[Fused]:
        def score(f: Fused) -> float:
            t, m = f.scores.get("text", 0.0), f.scores.get("multimodal", 0.0)
            return text_weight * t + (1 - text_weight) * m

        return sorted(hits, key=lambda f: -score(f))

    return order


ORDERS: dict[str, Order] = {
    "best cosine (before)": lambda hits, q: hits,
    "+ lexical boost": lambda hits, q: lexical_boost(hits, keywords(q)),
    "+ per-video diversity": lambda hits, q: diversify(hits),
    "rank_vector_hits (after)": lambda hits, q: rank_vector_hits(hits, keywords(q)),
    "text cosine only": weighted(1.0),
    "0.7 text + 0.3 multimodal": weighted(0.7),
}


def ranks(
    corpus: Corpus, spec: dict[str, Any], queries: np.ndarray, text: np.ndarray, mm: np.ndarray,
    order: Order,
) -> list[tuple[int | None, Fused]]:  # fmt: skip
    ids = {path: vid for vid, path in corpus.names.items()}
    found = []
    for item, q in zip(spec["queries"], queries, strict=True):
        ranked = order(vector_hits(corpus, text @ q, mm @ q), item["query"])[:TOP_K]
        results = [(f.moment.video_id, f.moment.start, f.moment.end) for f in ranked]
        found.append(
            (first_relevant(results, ids[item["video"]], item["start"], item["end"]), ranked[0])
        )
    return found


def repeats_unfiltered(settings: Settings, queries: np.ndarray, texts: Sequence[str]) -> None:
    """Over the whole library (no video filter, as a user searches), how many of the top 5 are
    copies of a moment already above them, or further moments of a video already above."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=settings.milvus_uri, timeout=10.0, grpc_options=GRPC_OPTIONS)
    index = MomentIndex(client, settings.milvus_collection)
    counts = {"before": [0, 0], "after": [0, 0]}
    for vector, text in zip(queries, texts, strict=True):
        hits = merge_best(
            {kind: index.nearest(kind, vector.tolist(), 20) for kind in ("text", "multimodal")}
        )
        for name, ranked in (("before", hits), ("after", rank_vector_hits(hits, keywords(text)))):
            top = ranked[:TOP_K]
            counts[name][0] += len(top) - len({content_key(f.moment) for f in top})
            counts[name][1] += len(top) - len({f.moment.video_id for f in top})
    client.close()
    print(
        "\n| whole library, top 5 of all queries | copies of a moment above | same video as above |"
    )
    for name, (copies, same) in counts.items():
        print(f"| {name} | {copies} of {TOP_K * len(texts)} | {same} of {TOP_K * len(texts)} |")


def table_row(name: str, spec: dict[str, Any], found: list[tuple[int | None, Fused]]) -> str:
    cells = []
    for split in SPLITS:
        r = [
            rank
            for (rank, _), q in zip(found, spec["queries"], strict=True)
            if split_of(q) == split
        ]
        cells.append(f"{recall_at(r, 1):.3f} {recall_at(r, 5):.3f} {mean_reciprocal_rank(r):.3f}")
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--retag", action="store_true", help="also prototype top-10 ConSE tags")
    parser.add_argument("--show", choices=SPLITS, help="per-query ranks of one split")
    args = parser.parse_args()
    settings = load_settings()
    spec = load_set()
    corpus = load_corpus(settings, spec)
    triton = TritonClient(settings.triton_url)
    embed = Embedder(triton)
    queries = embed([q["query"] for q in spec["queries"]])
    header = "| {} | " + " | ".join(f"{s} R@1 R@5 MRR" for s in SPLITS) + " |"
    counts = {s: sum(1 for q in spec["queries"] if split_of(q) == s) for s in SPLITS}
    print(f"{len(corpus.moments)} moments; queries per split: {counts}\n")
    print(header.format("/v1/search order (stored vectors)"))
    for name, order in ORDERS.items():
        print(
            table_row(
                name, spec, ranks(corpus, spec, queries, corpus.text, corpus.multimodal, order)
            )
        )

    repeats_unfiltered(settings, queries, [q["query"] for q in spec["queries"]])

    texts = embed([describe(a)[0] for a in corpus.analyses])
    names = glosses(settings)
    variants: dict[str, np.ndarray] = {
        "rebuilt as stored (check)": np.array(
            [multimodal_vector(a, embed, {}) for a in corpus.analyses]
        ),
        "ConSE classes with their gloss": np.array(
            [multimodal_vector(a, embed, names) for a in corpus.analyses]
        ),
    }
    if args.retag:
        seen = [retagged(triton, a) for a in corpus.analyses]
        variants["ConSE over top-10 tags, no floor"] = np.array(
            [multimodal_vector(a, embed, {}, s) for a, s in zip(corpus.analyses, seen, strict=True)]
        )
        variants["top-10 tags + gloss"] = np.array(
            [
                multimodal_vector(a, embed, names, s)
                for a, s in zip(corpus.analyses, seen, strict=True)
            ]
        )
    print("\n" + header.format("ingestion prototype, before / after order"))
    for name, mm in variants.items():
        for label, order in (
            ("before", ORDERS["best cosine (before)"]),
            ("after", rank_vector_hits_order),
        ):
            print(
                table_row(
                    f"{name}, {label}", spec, ranks(corpus, spec, queries, texts, unit(mm), order)
                )
            )

    if args.show:
        after = ranks(corpus, spec, queries, corpus.text, corpus.multimodal, rank_vector_hits_order)
        print(f"\n{args.show}: rank after, query, expected -> first result")
        for (rank, top), item in zip(after, spec["queries"], strict=True):
            if split_of(item) == args.show:
                first = corpus.names.get(top.moment.video_id, "?").split("/")[-1]
                expected = item["video"].split("/")[-1]
                print(
                    f"  {rank or '-':>2}  {item['query'][:50]:<50} {expected:<28} -> {first} "
                    f"{top.moment.start:.1f}s | {top.moment.text[:60]}"
                )


def rank_vector_hits_order(hits: list[Fused], query: str) -> list[Fused]:
    return rank_vector_hits(hits, keywords(query))


if __name__ == "__main__":
    main()
