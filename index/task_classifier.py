"""Task inference: which task a query belongs to, learned from the indexed templates.

Same-task templates help and other tasks' templates can hurt, yet apps rarely send a task label.
Embeddings alone confuse tasks whose queries mean similar things but look different (trivia vs
natural questions, ARC vs OpenBookQA), so the classifier also sees surface form: case-sensitive
character n-grams with start/end markers (punctuation, casing, LaTeX, code) and word n-grams.

The n-grams are hashed (stateless), so the whole model is three arrays of numbers (idf weights,
coefficients, intercepts) plus class names: it is stored as ``.npz`` + ``.json`` and loaded with
``allow_pickle=False``; nothing executable is ever read from disk.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mmh3
import numpy as np

CLASSIFIER_ARRAYS_FILE = "task_classifier.npz"
CLASSIFIER_META_FILE = "task_classifier.json"
CLASSIFIER_FORMAT = 2
# Format 1 stored one coefficient row for a two-task classifier and an uncalibrated scale.
READABLE_FORMATS = (1, CLASSIFIER_FORMAT)
# Columns per n-gram kind are 2**hash_bits: a stored value above this is not a classifier.
MAX_HASH_BITS = 24
_START, _END = "\x02", "\x03"
_WORD_PATTERN = r"(?u)\b\w+\b|[^\w\s]"
_WORDS = re.compile(_WORD_PATTERN)
_WHITE_SPACES = re.compile(r"\s\s+")


#: Per feature kind, each query's n-gram columns and sublinear term frequencies.
NgramCounts = dict[str, list[tuple[np.ndarray, np.ndarray]]]


class TaskClassifierError(ValueError):
    """Training data or a stored classifier is unusable; the message says why."""


@dataclass(frozen=True)
class FeatureConfig:
    """How queries become features; stored with the model so loading rebuilds the same ones."""

    char_ngrams: tuple[int, int] = (1, 5)
    word_ngrams: tuple[int, int] = (1, 2)
    hash_bits: int = 17
    embedding_weight: float = 1.0
    regularization_c: float = 1.0
    confidence_scale: float = 3.0


@dataclass(frozen=True)
class TaskPrediction:
    """Most likely task of each query, its confidence, and the confidence of every class."""

    tasks: tuple[str, ...]
    confidences: np.ndarray
    probabilities: np.ndarray
    classes: tuple[str, ...]


def _ngrams(
    units: Sequence[str], low: int, high: int, join: Callable[[Sequence[str]], str]
) -> list[str]:
    """Every run of ``low``..``high`` consecutive units, joined, shortest first."""
    return [
        join(units[start : start + n])
        for n in range(low, min(high, len(units)) + 1)
        for start in range(len(units) - n + 1)
    ]


def _char_ngrams(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """scikit-learn's ``analyzer="char"`` n-grams (runs of whitespace read as one space)."""
    return _ngrams(_WHITE_SPACES.sub(" ", text), *ngram_range, str)  # a str slice is a str


def _word_ngrams(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """scikit-learn's ``analyzer="word"`` n-grams of the lowercased tokens."""
    return _ngrams(_WORDS.findall(text.lower()), *ngram_range, " ".join)


class _NgramFeatures:
    """Hashed, sublinear-tf, idf-weighted, L2-normalized n-grams of one kind, one query at a time.

    The n-grams and their MurmurHash3 columns are those of scikit-learn's ``HashingVectorizer``
    (a test checks that), made here: its ``transform`` and scipy's sparse products spend more on
    validating and allocating than on one query's few hundred n-grams (0.27 ms per query against
    0.12 ms), and importing it would load pandas and pyarrow into every server (150 MiB).
    """

    def __init__(self, analyzer: str, ngram_range: tuple[int, int], bits: int) -> None:
        self._make = _char_ngrams if analyzer == "char" else _word_ngrams
        self._ngram_range = ngram_range
        self.columns = 1 << bits

    def counts(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The query's columns (sorted, distinct) and their sublinear term frequencies."""
        grams = self._make(f"{_START}{text}{_END}", self._ngram_range)
        hashes = np.fromiter(map(mmh3.hash, grams), dtype=np.int64, count=len(grams))
        columns, counts = np.unique(np.abs(hashes) % self.columns, return_counts=True)
        return columns, 1.0 + np.log(counts, dtype=np.float32)

    @staticmethod
    def weigh(
        counts: tuple[np.ndarray, np.ndarray], idf: np.ndarray | _SparseRows
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scale each term frequency by its column's idf, then L2-normalize."""
        columns, frequencies = counts
        values = frequencies * idf[columns]
        norm = float(np.sqrt(values @ values))
        return columns, values / norm if norm > 0 else values

    def fit_idf(self, counts: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Smoothed idf, as scikit-learn's TfidfTransformer computes it."""
        document_frequency = np.bincount(
            np.concatenate([columns for columns, _ in counts]), minlength=self.columns
        )
        return (np.log((1 + len(counts)) / (1 + document_frequency)) + 1.0).astype(np.float32)


class TaskClassifier:
    """Linear SVM (one-vs-rest) over n-gram and embedding features of a query.

    A linear SVM trains in seconds on hundreds of thousands of sparse features where multinomial
    logistic regression takes minutes. Confidences are a softmax of the margins scaled by
    ``confidence_scale``, which ``thoughtbank.index.task_routing`` fits on held-out folds so
    that they are calibrated probabilities (format 1 classifiers keep the fixed default).

    A two-task LinearSVC has one decision column (positive: the second class); it is kept as
    two opposite columns so that every class has its own margin.
    """

    def __init__(
        self,
        config: FeatureConfig,
        idf: dict[str, np.ndarray],
        coef: np.ndarray,
        intercept: np.ndarray,
        classes: Sequence[str],
    ) -> None:
        self.config = config
        self.classes = tuple(classes)
        coef, self.intercept = _one_column_per_class(coef, intercept, len(self.classes))
        self._features = _feature_kinds(config)
        _check_shapes(idf, coef, self._features)
        self._idf = {kind: _SparseRows(v, float(v.max(initial=0.0))) for kind, v in idf.items()}
        # Only the blocks are kept: a second, untransposed copy would double a namespace's cost.
        self._ngram_coef, self._embedding_coef = _coefficient_blocks(coef, self._features, config)

    @property
    def idf(self) -> dict[str, np.ndarray]:
        """Each n-gram kind's idf weights, as trained."""
        return {kind: idf.dense() for kind, idf in self._idf.items()}

    @property
    def coef(self) -> np.ndarray:
        """The coefficients as trained, (classes, stacked feature columns)."""
        blocks = [block.dense() for block in self._ngram_coef.values()]
        return np.ascontiguousarray(np.vstack([*blocks, self._embedding_coef]).T)

    @property
    def embedding_dimension(self) -> int:
        """Length of the query embeddings the coefficients expect."""
        return int(self._embedding_coef.shape[0])

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        embeddings: np.ndarray,
        tasks: Sequence[str],
        config: FeatureConfig | None = None,
    ) -> TaskClassifier:
        """Train on queries with their (normalized) embeddings and task labels."""
        config = config or FeatureConfig()
        return cls.fit_counted(count_ngrams(texts, config), embeddings, tasks, config)

    @classmethod
    def fit_counted(
        cls,
        counts: NgramCounts,
        embeddings: np.ndarray,
        tasks: Sequence[str],
        config: FeatureConfig,
    ) -> TaskClassifier:
        """``fit`` on n-grams counted by ``count_ngrams`` with the same ``config``, so that
        classifiers trained on folds of the same queries count them once."""
        check_training_data(counts, embeddings, tasks)
        features = _feature_kinds(config)
        idf = {kind: features[kind].fit_idf(c) for kind, c in counts.items()}
        from sklearn.svm import LinearSVC  # training only: a server never loads scikit-learn

        model = LinearSVC(C=config.regularization_c)
        model.fit(_stack(features, counts, idf, embeddings, config), list(tasks))
        return cls(
            config,
            idf,
            model.coef_.astype(np.float32),
            model.intercept_.astype(np.float32),
            [str(c) for c in model.classes_],
        )

    def margins(self, texts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        """Decision values, (len(texts), classes)."""
        counts = {kind: [f.counts(t) for t in texts] for kind, f in self._features.items()}
        return self.margins_counted(counts, embeddings)

    def margins_counted(self, counts: NgramCounts, embeddings: np.ndarray) -> np.ndarray:
        """``margins`` of counted queries: each feature block times its coefficients, summed,
        which equals the stacked product of training without building the stack (a query's
        n-grams only read their own coefficient rows)."""
        total = (
            self.config.embedding_weight
            * np.asarray(embeddings, dtype=np.float32)
            @ self._embedding_coef
        )
        for kind, rows in counts.items():
            for row, row_counts in enumerate(rows):
                columns, values = _NgramFeatures.weigh(row_counts, self._idf[kind])
                total[row] += values @ self._ngram_coef[kind][columns]
        return np.asarray(total + self.intercept)

    def predict(self, texts: Sequence[str], embeddings: np.ndarray) -> TaskPrediction:
        """Best task of each query with softmax confidences over the scaled margins."""
        logits = self.config.confidence_scale * self.margins(texts, embeddings)
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        best = probabilities.argmax(axis=1)
        return TaskPrediction(
            tasks=tuple(self.classes[i] for i in best),
            confidences=probabilities[np.arange(len(best)), best],
            probabilities=probabilities,
            classes=self.classes,
        )

    def save(self, folder: Path) -> tuple[str, str]:
        """Write the arrays (.npz) and metadata (.json) into ``folder``; return both names."""
        folder = Path(folder)
        arrays: dict[str, Any] = {f"idf_{kind}": idf for kind, idf in self.idf.items()}
        np.savez_compressed(
            folder / CLASSIFIER_ARRAYS_FILE, coef=self.coef, intercept=self.intercept, **arrays
        )
        meta = {
            "format": CLASSIFIER_FORMAT,
            "classes": list(self.classes),
            "config": asdict(self.config),
        }
        (folder / CLASSIFIER_META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        return CLASSIFIER_ARRAYS_FILE, CLASSIFIER_META_FILE

    @classmethod
    def load(cls, folder: Path) -> TaskClassifier:
        """Read what ``save`` wrote; raise ``TaskClassifierError`` if it is not that."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / CLASSIFIER_META_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise TaskClassifierError(f"{folder}: unreadable task classifier: {exc}") from exc
        if not isinstance(meta, dict):
            raise TaskClassifierError(f"{folder / CLASSIFIER_META_FILE}: not a JSON object")
        if meta.get("format") not in READABLE_FORMATS:
            raise TaskClassifierError(
                f"{folder / CLASSIFIER_META_FILE}: unsupported task classifier format "
                f"{meta.get('format')!r}"
            )
        try:
            stored: dict[str, Any] = {
                key: tuple(value) if isinstance(value, list) else value
                for key, value in meta["config"].items()
            }
            config = FeatureConfig(**stored)
            if not isinstance(config.hash_bits, int) or not 1 <= config.hash_bits <= MAX_HASH_BITS:
                raise TaskClassifierError(
                    f"hash_bits {config.hash_bits!r} outside 1..{MAX_HASH_BITS}"
                )
            with np.load(folder / CLASSIFIER_ARRAYS_FILE, allow_pickle=False) as arrays:
                idf = {kind: arrays[f"idf_{kind}"] for kind in _feature_kinds(config)}
                return cls(config, idf, arrays["coef"], arrays["intercept"], meta["classes"])
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise TaskClassifierError(f"{folder}: unreadable task classifier: {exc}") from exc


def count_ngrams(texts: Sequence[str], config: FeatureConfig) -> NgramCounts:
    """Every query's n-grams of each kind, counted as the classifier of ``config`` counts them."""
    return {kind: [f.counts(t) for t in texts] for kind, f in _feature_kinds(config).items()}


def select_rows(counts: NgramCounts, rows: Iterable[int]) -> NgramCounts:
    """The counts of ``rows`` only, in that order."""
    chosen = list(rows)
    return {kind: [per_row[i] for i in chosen] for kind, per_row in counts.items()}


def check_training_data(counts: NgramCounts, embeddings: np.ndarray, tasks: Sequence[str]) -> None:
    """Raise ``TaskClassifierError`` unless the rows align and hold two tasks or more."""
    if len(set(tasks)) < 2:
        raise TaskClassifierError("task inference needs templates of at least two tasks")
    if any(len(rows) != len(tasks) for rows in counts.values()) or len(embeddings) != len(tasks):
        raise TaskClassifierError("texts, embeddings and tasks differ in length")


def _one_column_per_class(
    coef: np.ndarray, intercept: np.ndarray, classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Binary SVM weights (one row, for the second class) as one row per class."""
    coef, intercept = np.atleast_2d(coef), np.atleast_1d(intercept)
    if classes == 2 and len(coef) == 1:
        return np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
    if len(coef) != classes or len(intercept) != classes:
        raise TaskClassifierError(
            f"{len(coef)} coefficient rows and {len(intercept)} intercepts for {classes} tasks"
        )
    return coef, intercept


def _check_shapes(
    idf: dict[str, np.ndarray], coef: np.ndarray, features: dict[str, _NgramFeatures]
) -> None:
    """Arrays that do not fit the features would fail every prediction: refuse them at load."""
    for kind, feature in features.items():
        if np.shape(idf[kind]) != (feature.columns,):
            raise TaskClassifierError(
                f"{kind} idf weights of shape {np.shape(idf[kind])}, expected ({feature.columns},)"
            )
    if coef.ndim != 2 or coef.shape[1] <= sum(f.columns for f in features.values()):
        raise TaskClassifierError(f"coefficients of shape {coef.shape} leave no embedding columns")


def _feature_kinds(config: FeatureConfig) -> dict[str, _NgramFeatures]:
    return {
        "char": _NgramFeatures("char", config.char_ngrams, config.hash_bits),
        "word": _NgramFeatures("word", config.word_ngrams, config.hash_bits),
    }


class _SparseRows:
    """A block of rows, (columns, ...), keeping only those not entirely ``default``. A linear
    SVM leaves every hashed n-gram no training query had at zero weight and the highest idf,
    most of them, and a server holds one classifier per namespace."""

    def __init__(self, dense: np.ndarray, default: float = 0.0) -> None:
        self.shape, self.default = dense.shape, default
        differs = dense != default
        self.rows = np.flatnonzero(differs.reshape(len(dense), -1).any(axis=1)).astype(np.int32)
        self.values = np.ascontiguousarray(dense[self.rows])

    def __getitem__(self, columns: np.ndarray) -> np.ndarray:
        """The rows of ``columns``, ``default`` where none is stored."""
        found = np.full((len(columns), *self.shape[1:]), self.default, dtype=self.values.dtype)
        if not len(self.rows):
            return found
        at = np.minimum(np.searchsorted(self.rows, columns), len(self.rows) - 1)
        stored = self.rows[at] == columns
        found[stored] = self.values[at[stored]]
        return found

    def dense(self) -> np.ndarray:
        block = np.full(self.shape, self.default, dtype=self.values.dtype)
        block[self.rows] = self.values
        return block


def _coefficient_blocks(
    coef: np.ndarray, features: dict[str, _NgramFeatures], config: FeatureConfig
) -> tuple[dict[str, _SparseRows], np.ndarray]:
    """``coef`` split by feature block, transposed to (block columns, classes), in the column
    order of ``_stack``: each n-gram kind's (sparse), then the embedding's."""
    blocks, start = {}, 0
    for kind in features:
        end = start + (1 << config.hash_bits)
        blocks[kind] = _SparseRows(coef[:, start:end].T)
        start = end
    return blocks, coef[:, start:].T.copy()  # a copy: a view would keep all of ``coef``


def _stack(
    features: dict[str, _NgramFeatures],
    counts: dict[str, list[tuple[np.ndarray, np.ndarray]]],
    idf: dict[str, np.ndarray],
    embeddings: np.ndarray,
    config: FeatureConfig,
) -> Any:
    """The training matrix (scipy CSR): each n-gram kind's weighted rows, then the weighted
    embeddings."""
    from scipy import sparse

    blocks = []
    for kind, rows in counts.items():
        weighted = [_NgramFeatures.weigh(row, idf[kind]) for row in rows]
        indptr = np.cumsum([0, *(len(columns) for columns, _ in weighted)])
        blocks.append(
            sparse.csr_matrix(
                (
                    np.concatenate([values for _, values in weighted]),
                    np.concatenate([columns for columns, _ in weighted]),
                    indptr,
                ),
                shape=(len(rows), features[kind].columns),
            )
        )
    dense = sparse.csr_matrix(config.embedding_weight * np.asarray(embeddings, dtype=np.float32))
    return sparse.hstack([*blocks, dense], format="csr")
