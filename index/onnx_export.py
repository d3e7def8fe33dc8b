"""Export a sentence-transformers folder's transformer to ONNX, and quantize it to int8.

Run as ``python -m thoughtbank.index.onnx_export MODEL_DIR OUT.onnx [--int8]`` by
``onnx_embedder``, in a child process: exporting needs torch and transformers, which a server
on the ONNX backend must never load.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

OPSET = 17
# Per-channel int8 weights keep the embeddings near fp32's; per-tensor ones do not.
INT8_PER_CHANNEL = True


def export_fp32(model_dir: Path, out: Path) -> None:
    """``last_hidden_state`` of the model's transformer, dynamic in batch and sequence."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir)).eval()

    class LastHiddenState(torch.nn.Module):
        """Calls the model by keyword: positional inputs collide with newer signatures."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            outputs = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return outputs.last_hidden_state

    sample = torch.ones((1, 8), dtype=torch.int64)
    axes = {0: "batch", 1: "sequence"}
    with torch.inference_mode():
        torch.onnx.export(
            LastHiddenState(),
            (sample, sample, torch.zeros_like(sample)),
            str(out),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "last_hidden_state": axes,
            },
            opset_version=OPSET,
            dynamo=False,
        )


def quantize_int8(fp32: Path, out: Path) -> None:
    """Dynamic int8 quantization of the MatMul weights (VNNI kernels on this kind of CPU)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32),
        str(out),
        weight_type=QuantType.QInt8,
        per_channel=INT8_PER_CHANNEL,
        op_types_to_quantize=["MatMul"],
    )


def export(model_dir: Path, out: Path, int8: bool) -> None:
    if not int8:
        export_fp32(model_dir, out)
        return
    with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
        fp32 = Path(scratch) / "fp32.onnx"
        export_fp32(model_dir, fp32)
        quantize_int8(fp32, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--int8", action="store_true")
    args = parser.parse_args(argv)
    try:
        export(args.model_dir, args.out, args.int8)
    except Exception as exc:  # the parent turns this line into its one-line error
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
