"""``index build/add --engine ray``: templates embedded by a Ray Data actor pool.

Each actor loads the build's own model, backend and precision once and embeds a share of the
texts; the vectors come back to the driver, which builds the FAISS index and writes the version
as on one machine. Identity (model, probes, fingerprint) is the driver's embedder's, so the
manifest is the one a local build writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from itertools import islice
from typing import Any

import numpy as np
import pyarrow as pa

from thoughtbank.cli_common import DEFAULT_EMBED_BATCH_SIZE
from thoughtbank.index.embedder import Embedder, load_embedder
from thoughtbank.progress import progress_bar
from thoughtbank.templates.ray_cluster import ClusterLostError, cluster_cpus, ray, ray_cluster

RERUN_HINT = "no version was written: run the command again"
#: Most texts in one object-store block (one actor call): Ray Data's cost per block is paid
#: on the same cores that embed, so blocks are as large as keeping every actor busy allows.
MAX_BLOCK_TEXTS = 512
#: Blocks per actor at least, so that the last ones even out the actors' finishing times.
BLOCKS_PER_ACTOR = 2


class TextEncoder:
    """A Ray Data actor holding one model; rows keep their position for the driver."""

    def __init__(self, model_id: str, backend: str, precision: str, device: str, batch_size: int):
        self.embedder = load_embedder(model_id, backend, precision, device, batch_size)
        # Loaded here, so an actor is ready only once it can embed: no block waits on a load.
        self.embedder.encode(["load the model"])

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.embedder.encode([str(text) for text in batch["text"]])
        return {"row": batch["row"], "vector": vectors}


class RayPoolEmbedder(Embedder):
    """``local``'s embeddings computed on the Ray cluster at ``address`` by ``actors`` actors
    (default: one per CPU of the cluster); everything else is ``local``'s."""

    def __init__(
        self,
        local: Embedder,
        address: str | None = None,
        actors: int | None = None,
        device: str = "cpu",
        batch_size: int = DEFAULT_EMBED_BATCH_SIZE,
    ) -> None:
        super().__init__(local.model_id, local.precision)
        self.local, self.address, self.actors = local, address, actors
        self.device, self.batch_size = device, batch_size
        self.backend = local.backend

    @property
    def dimension(self) -> int:
        return self.local.dimension

    def count_tokens(self, text: str) -> int:
        return self.local.count_tokens(text)

    @property
    def model_sha256(self) -> str:
        return self.local.model_sha256

    def describe(self) -> str:
        return f"{self.local.describe()} on Ray actors"

    @cached_property
    def probe_vectors(self) -> np.ndarray:
        return self.local.probe_vectors

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        if not texts:
            return self.local.encode(texts)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with (
            ray_cluster(self.address, RERUN_HINT) as cluster,
            progress_bar("embedding", "texts", show_progress, len(texts)) as progress,
        ):
            try:
                for batch in self._pipeline(texts).iter_batches(
                    batch_size=None, batch_format="numpy"
                ):
                    vectors[batch["row"]] = batch["vector"]
                    progress.update(len(batch["row"]))
            except ray.exceptions.RayError as exc:
                raise ClusterLostError(
                    f"{cluster} failed while embedding ({exc}); {RERUN_HINT}"
                ) from exc
        return vectors

    def _pipeline(self, texts: Sequence[str]) -> ray.data.Dataset:
        actors = self.actors or cluster_cpus()
        block_texts = min(MAX_BLOCK_TEXTS, -(-len(texts) // (actors * BLOCKS_PER_ACTOR)))
        return ray.data.from_arrow_refs(_text_blocks(texts, block_texts)).map_batches(
            TextEncoder,
            fn_constructor_kwargs={
                "model_id": self.model_id,
                "backend": self.backend,
                "precision": self.precision,
                "device": self.device,
                "batch_size": self.batch_size,
            },
            batch_size=None,  # a whole block per call
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,
            num_gpus=1 if self.device == "cuda" else 0,
        )


def _text_blocks(texts: Sequence[str], block_texts: int) -> list[Any]:
    """Blocks of ``block_texts`` texts, longest first: each block's texts are of similar length
    (its batches pad little) and the shortest, quickest blocks come last, evening out the end."""
    rows = iter(sorted(enumerate(texts), key=lambda row: -len(row[1])))
    blocks = []
    while chunk := list(islice(rows, block_texts)):
        positions, chunk_texts = zip(*chunk, strict=True)
        blocks.append(ray.put(pa.table({"row": list(positions), "text": list(chunk_texts)})))
    return blocks
