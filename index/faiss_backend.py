"""Import of FAISS with a clear message when neither extra is installed."""

from __future__ import annotations

from types import ModuleType


class FaissMissingError(ImportError):
    pass


def import_faiss() -> ModuleType:
    try:
        import faiss
    except ImportError as exc:
        raise FaissMissingError(
            "FAISS is not installed. Install exactly one of: pip install 'thoughtbank[cpu]' "
            "(faiss-cpu) or pip install 'thoughtbank[gpu]' (faiss-gpu, needs CUDA)"
        ) from exc
    return faiss
