"""Index stage: templates -> embeddings -> versioned, verified FAISS artifact."""

from thoughtbank.index.artifact import (
    EmbedderMismatchError,
    IndexArtifactError,
    IndexManifest,
    LoadedIndex,
    SourceFile,
    current_version,
    list_versions,
    load_index,
    prune,
    rollback,
    template_int_id,
    verify_embedder,
    verify_version,
    version_dir,
)
from thoughtbank.index.builder import (
    IndexSettings,
    UpdateResult,
    add_templates,
    build_index,
    remove_templates,
)
from thoughtbank.index.embedder import BUNDLED_MODEL, Embedder, EmbedderError
from thoughtbank.index.faiss_backend import IdFilter
from thoughtbank.index.threads import default_threads, use_threads

__all__ = [
    "BUNDLED_MODEL",
    "Embedder",
    "EmbedderError",
    "EmbedderMismatchError",
    "IdFilter",
    "IndexArtifactError",
    "IndexManifest",
    "IndexSettings",
    "LoadedIndex",
    "SourceFile",
    "UpdateResult",
    "add_templates",
    "build_index",
    "current_version",
    "default_threads",
    "list_versions",
    "load_index",
    "prune",
    "remove_templates",
    "rollback",
    "template_int_id",
    "use_threads",
    "verify_embedder",
    "verify_version",
    "version_dir",
]
