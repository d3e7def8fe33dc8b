"""Index stage: templates -> embeddings -> versioned, verified FAISS artifact."""

from thoughtbank.index.artifact import (
    EmbedderMismatchError,
    IndexArtifactError,
    IndexManifest,
    LoadedIndex,
    build_index,
    current_version,
    load_index,
    template_int_id,
    verify_embedder,
    verify_version,
)
from thoughtbank.index.embedder import BUNDLED_MODEL, Embedder, EmbedderError

__all__ = [
    "BUNDLED_MODEL",
    "Embedder",
    "EmbedderError",
    "EmbedderMismatchError",
    "IndexArtifactError",
    "IndexManifest",
    "LoadedIndex",
    "build_index",
    "current_version",
    "load_index",
    "template_int_id",
    "verify_embedder",
    "verify_version",
]
