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
    manifest_backend,
    manifest_embedder,
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
from thoughtbank.index.embedder import (
    BUNDLED_MODEL,
    Embedder,
    EmbedderError,
    TorchEmbedder,
    load_embedder,
)
from thoughtbank.index.faiss_backend import IdFilter, import_faiss
from thoughtbank.index.outcomes import OutcomeStore
from thoughtbank.index.task_classifier import TaskClassifier
from thoughtbank.index.task_routing import RoutingQuality, calibration_error, train_task_router
from thoughtbank.index.threads import default_threads, use_threads
from thoughtbank.index.usefulness import TemplateUse, lift_of, task_mean_scores

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
    "OutcomeStore",
    "PruneResult",
    "RoutingQuality",
    "SourceFile",
    "TaskClassifier",
    "TemplateUse",
    "TorchEmbedder",
    "UpdateResult",
    "add_templates",
    "build_index",
    "calibration_error",
    "current_version",
    "damage_of",
    "default_threads",
    "import_faiss",
    "lift_of",
    "list_versions",
    "load_embedder",
    "load_index",
    "manifest_backend",
    "manifest_embedder",
    "prune",
    "remove_templates",
    "rollback",
    "set_min_scores",
    "task_mean_scores",
    "template_int_id",
    "train_task_router",
    "use_threads",
    "verify_embedder",
    "verify_version",
    "version_dir",
]
