"""Memory benchmark: the server's resident memory against what it must hold at least, the
embedding model's weights plus the index's vectors plus its template text.

Two servers are measured after a warm-up of real requests: one on a small index (1k templates)
and one on the full one (100k, 10k with ``--quick``), both on the default embedding backend.
The whole-process ratio includes the interpreter, onnxruntime and gRPC; the marginal ratio (RSS
difference over data difference) says what each stored template really costs against its raw
bytes.

A third set of servers runs on an index root holding 1, 4 and 16 namespaces, each a copy of one
10k-template index: what each added namespace costs against its own vectors and texts says
whether tenants share the model and the process, as they should.

Usage: ``python -m benchmarks.bench_memory [--quick]``
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil

from benchmarks.bench_serving import build_synthetic_index
from benchmarks.common import LOAD_QUERIES, ratio, run_cli
from thoughtbank.index import Embedder, TorchEmbedder, load_embedder, load_index
from thoughtbank.index.onnx_embedder import OnnxEmbedder
from thoughtbank.retriever import ThoughtbankClient
from thoughtbank.retriever.serving.process import ServerProcess

MIB = 2**20
SMALL_INDEX = 1_000
WARM_UP_REQUESTS = 50
NAMESPACE_TEMPLATES = 10_000
NAMESPACE_COUNTS = (1, 4, 16)


@dataclass(frozen=True)
class IndexBytes:
    """Raw bytes an index version must keep in memory."""

    vectors: int
    template_text: int

    @classmethod
    def of(cls, index_dir: Path) -> IndexBytes:
        index = load_index(index_dir)
        text = sum(
            len(t.text.encode()) + len(t.source_query.encode()) for t in index.templates.values()
        )
        return cls(vectors=int(index.embeddings.nbytes), template_text=text)

    @property
    def total(self) -> int:
        return self.vectors + self.template_text


def model_bytes(embedder: Embedder) -> int:
    """Bytes of the embedding model: the ONNX file, or torch's parameters and buffers."""
    if isinstance(embedder, OnnxEmbedder):
        return embedder.model_path.stat().st_size
    assert isinstance(embedder, TorchEmbedder)
    tensors = [*embedder.model.parameters(), *embedder.model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def warm_up(server: ServerProcess, namespace: str = "") -> int:
    """Send ``WARM_UP_REQUESTS`` requests to ``namespace``; the server's RSS afterwards."""
    with ThoughtbankClient(server.address, namespace=namespace) as client:
        for n in range(WARM_UP_REQUESTS):
            client.retrieve(LOAD_QUERIES[n % len(LOAD_QUERIES)], k=3)
    return int(psutil.Process(server.pid).memory_info().rss)


def served_rss(index_dir: Path) -> int:
    """RSS of `thoughtbank serve` on ``index_dir`` after ``WARM_UP_REQUESTS`` requests."""
    with ServerProcess(index_dir, extra_args=("--log-level", "WARNING")) as server:
        return warm_up(server)


def namespaces_rss(index_dir: Path, root: Path) -> dict[int, int]:
    """RSS of `thoughtbank serve --index-root` per count of namespaces, each a copy of
    ``index_dir``, once every namespace is warmed up."""
    rss: dict[int, int] = {}
    for count in NAMESPACE_COUNTS:
        for n in range(len(list(root.glob("*"))), count):
            shutil.copytree(index_dir, root / f"tenant-{n:02d}")
        extra = ("--log-level", "WARNING")
        with ServerProcess(None, index_root=root, extra_args=extra) as server:
            for folder in sorted(root.iterdir()):
                rss[count] = warm_up(server, folder.name)
    return rss


def run(quick: bool) -> dict[str, float]:
    size = 10_000 if quick else 100_000
    embedder = load_embedder()  # the default backend, as `thoughtbank serve` would run it
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        small_dir, full_dir = Path(folder) / "small", Path(folder) / "full"
        build_synthetic_index(SMALL_INDEX, small_dir, embedder)
        build_synthetic_index(size, full_dir, embedder)
        small, full = IndexBytes.of(small_dir), IndexBytes.of(full_dir)
        small_rss, full_rss = served_rss(small_dir), served_rss(full_dir)
        tenant_dir = full_dir
        if size != NAMESPACE_TEMPLATES:
            tenant_dir = Path(folder) / "tenant"
            build_synthetic_index(NAMESPACE_TEMPLATES, tenant_dir, embedder)
        tenant = IndexBytes.of(tenant_dir)
        root = Path(folder) / "root"
        root.mkdir()
        tenants_rss = namespaces_rss(tenant_dir, root)
    model = model_bytes(embedder)
    print(f"server embeds with {embedder.describe()}")
    ideal = model + full.total
    return {
        "templates": float(size),
        "server_rss_mib": full_rss / MIB,
        "model_mib": model / MIB,
        "vectors_mib": full.vectors / MIB,
        "template_text_mib": full.template_text / MIB,
        "ideal_mib": ideal / MIB,
        "rss_vs_ideal": ratio(full_rss, ideal),
        "small_index_rss_mib": small_rss / MIB,
        "marginal_rss_vs_data": ratio(full_rss - small_rss, full.total - small.total),
        "namespace_data_mib": tenant.total / MIB,
        **{f"namespaces_{n}_rss_mib": tenants_rss[n] / MIB for n in NAMESPACE_COUNTS},
        "added_namespace_vs_data": ratio(
            (tenants_rss[NAMESPACE_COUNTS[-1]] - tenants_rss[1]) / (NAMESPACE_COUNTS[-1] - 1),
            tenant.total,
        ),
    }


def report(figures: dict[str, float]) -> None:
    print(
        f"server RSS with {figures['templates']:.0f} templates: {figures['server_rss_mib']:.0f} MiB"
    )
    print(
        f"  model {figures['model_mib']:.0f} + vectors {figures['vectors_mib']:.0f} + text "
        f"{figures['template_text_mib']:.0f} = {figures['ideal_mib']:.0f} MiB: RSS is "
        f"{figures['rss_vs_ideal']:.2f}x that"
    )
    print(
        f"  marginal: {figures['marginal_rss_vs_data']:.2f}x the raw bytes of each template "
        f"(RSS with {SMALL_INDEX} templates: {figures['small_index_rss_mib']:.0f} MiB)"
    )
    counts = ", ".join(
        f"{n}: {figures[f'namespaces_{n}_rss_mib']:.0f} MiB" for n in NAMESPACE_COUNTS
    )
    print(
        f"server RSS by namespaces of {NAMESPACE_TEMPLATES} templates ({counts}): each added "
        f"namespace costs {figures['added_namespace_vs_data']:.2f}x its "
        f"{figures['namespace_data_mib']:.1f} MiB of vectors and texts"
    )


if __name__ == "__main__":
    sys.exit(run_cli(__doc__, run, report))
