"""Index stage: templates -> embeddings -> versioned, verified FAISS artifact."""

from thoughtbank.index.artifact import (
    EmbedderMismatchError,
    IndexArtifactError,
    IndexDamagedError,
    IndexManifest,
    LoadedIndex,
    PruneResult,
    SourceFile,
    current_version,
    damage_of,
    list_versions,
    load_index,
    prune,
    rollback,
    set_min_scores,
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
from thoughtbank.index.faiss_backend import IdFilter, import_faiss
from thoughtbank.index.task_classifier import TaskClassifier
from thoughtbank.index.task_routing import RoutingQuality, calibration_error, train_task_router
from thoughtbank.index.threads import default_threads, use_threads

__all__ = [
    "BUNDLED_MODEL",
    "Embedder",
    "EmbedderError",
    "EmbedderMismatchError",
    "IdFilter",
    "IndexArtifactError",
    "IndexDamagedError",
    "IndexManifest",
    "IndexSettings",
    "LoadedIndex",
    "PruneResult",
    "RoutingQuality",
    "SourceFile",
    "TaskClassifier",
    "UpdateResult",
    "add_templates",
    "build_index",
    "calibration_error",
    "current_version",
    "damage_of",
    "default_threads",
    "import_faiss",
    "list_versions",
    "load_index",
    "prune",
    "remove_templates",
    "rollback",
    "set_min_scores",
    "template_int_id",
    "train_task_router",
    "use_threads",
    "verify_embedder",
    "verify_version",
    "version_dir",
]
