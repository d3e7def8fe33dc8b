"""What counts as a chat marker, written apart from the sanitizer so the tests judge it.

Text is read the way a hostile template hopes a model or terminal will: NFKC-folded, with
control and format (zero-width, bidi) characters gone and every Unicode line break a line
break. In that reading, no known special token, no ``<|...|>`` token and no line opening a
chat turn may remain.
"""

from __future__ import annotations

import re
import unicodedata

#: Special tokens of the major chat-template families.
SPECIAL_TOKENS = (
    "<|im_start|>",  # ChatML, Qwen
    "<|im_end|>",
    "<|endoftext|>",
    "<|begin_of_text|>",  # Llama 3
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
    "<|system|>",  # Phi
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
    "[INST]",  # Llama 2, Mistral
    "[/INST]",
    "<<SYS>>",
    "<</SYS>>",
    "<s>",
    "</s>",
    "[SYSTEM_PROMPT]",  # Mistral v3
    "[/SYSTEM_PROMPT]",
    "[TOOL_CALLS]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]",
    "<start_of_turn>",  # Gemma
    "<end_of_turn>",
    "<bos>",
    "<eos>",
    "<｜begin▁of▁sentence｜>",  # DeepSeek (fullwidth bars)
    "<｜end▁of▁sentence｜>",
    "<｜User｜>",
    "<｜Assistant｜>",
)
ROLES = (
    "system",
    "assistant",
    "user",
    "human",
    "ai",
    "developer",
    "tool",
    "model",
    "bot",
    "function",
)
ALPACA_HEADERS = ("### Instruction:", "### Input:", "### Response:")
LINE_BREAKS = ("\n", "\r", "\r\n", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")

_ANY_PIPE_TOKEN = re.compile(r"<\|[^<>|\n]{0,64}\|>")
_ROLE_LINE = re.compile(
    r"^(?:[^\w]|\d+[.)]?|[a-z][.)])*(?:" + "|".join(ROLES) + r")\b[^\w:]{0,8}:", re.IGNORECASE
)
_ALPACA_LINE = re.compile(r"^[^\w]*#[^\w]*(?:instruction|input|response)\b[^\w:]{0,8}(?::|$)", re.I)


def model_reading(text: str) -> str:
    """``text`` as a tokenizer or a terminal may take it: folded, invisible characters gone."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(
        char
        for char in folded
        if char in "\n\t\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
        or unicodedata.category(char) not in ("Cc", "Cf")
    )


def surviving_markers(text: str) -> list[str]:
    """The markers ``text`` still holds when read as a model would; empty when it is clean."""
    reading = model_reading(text)
    lowered = reading.lower()
    found = [t for t in SPECIAL_TOKENS if model_reading(t).lower() in lowered]
    found += _ANY_PIPE_TOKEN.findall(reading)
    found += [
        line for line in reading.splitlines() if _ROLE_LINE.match(line) or _ALPACA_LINE.match(line)
    ]
    if "\x1b" in text or "\x9b" in text:
        found.append("escape sequence")
    return found
