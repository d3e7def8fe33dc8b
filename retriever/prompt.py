"""FusionFactory-style prompt augmentation: similar questions with their templates, then the query.

The prompt is a langchain-core ``PromptTemplate`` with the variables ``templates``, ``query`` and
``answer_instruction``, so apps can replace it without touching retrieval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from langchain_core.prompts import PromptTemplate

from thoughtbank.retriever.types import ScoredTemplate

DEFAULT_PROMPT = PromptTemplate.from_template(
    "Below are thought templates distilled from how strong models solved questions similar to "
    "the one you must answer. Use them as guidance for your reasoning, not as facts.\n\n"
    "{templates}\n\n"
    "Now solve the following question.\n"
    "Question: {query}\n"
    "{answer_instruction}"
)
NO_TEMPLATE_INSTRUCTION = "Reason step by step, then state the final answer on the last line."
PROMPT_VARIABLES = frozenset({"templates", "query", "answer_instruction"})

TokenCounter = Callable[[str], int]


def check_prompt_template(prompt_template: PromptTemplate) -> PromptTemplate:
    """Refuse a prompt template whose variables are not exactly the ones filled in here."""
    variables = set(prompt_template.input_variables)
    if variables != PROMPT_VARIABLES:
        raise ValueError(
            f"prompt template variables are {sorted(variables)}; "
            f"expected exactly {sorted(PROMPT_VARIABLES)}"
        )
    return prompt_template


def load_prompt_template(text: str) -> PromptTemplate:
    """A checked ``PromptTemplate`` from f-string text with ``{templates}``, ``{query}``, ..."""
    return check_prompt_template(PromptTemplate.from_template(text))


def format_template_block(position: int, hit: ScoredTemplate) -> str:
    """One similar question with its template, as shown to the model."""
    return (
        f"### Similar question {position} (similarity {hit.score:.2f})\n"
        f"{hit.template.source_query.strip()}\n"
        f"Thought template:\n{hit.template.text.strip()}"
    )


def answer_instruction(hits: Sequence[ScoredTemplate]) -> str:
    """Ask for the answer format of the most similar template, when it has one."""
    if hits and hits[0].template.fields and hits[0].template.fields.answer_format:
        return (
            "Follow the reasoning steps of the most relevant template. "
            f"Answer format: {hits[0].template.fields.answer_format}"
        )
    return NO_TEMPLATE_INSTRUCTION


def fit_token_budget(
    hits: Sequence[ScoredTemplate], max_tokens: int, count_tokens: TokenCounter
) -> tuple[ScoredTemplate, ...]:
    """The hits whose template blocks fit in ``max_tokens``, dropping the lowest-scored first.

    Each block is counted once, as placed at its original position (renumbering after a drop
    changes its header by a digit at most); the order of the kept hits is unchanged.
    """
    kept = [(hit, count_tokens(format_template_block(i, hit))) for i, hit in enumerate(hits, 1)]
    while kept and sum(size for _, size in kept) > max_tokens:
        kept.remove(min(kept, key=lambda pair: pair[0].score))
    return tuple(hit for hit, _ in kept)


def build_augmented_prompt(
    query: str,
    hits: Sequence[ScoredTemplate],
    prompt_template: PromptTemplate = DEFAULT_PROMPT,
) -> str:
    """The prompt for ``query``; with no hits, the plain query and a generic instruction."""
    if not hits:
        return f"Question: {query}\n{NO_TEMPLATE_INSTRUCTION}"
    blocks = "\n\n".join(format_template_block(i, hit) for i, hit in enumerate(hits, 1))
    return prompt_template.format(
        templates=blocks, query=query, answer_instruction=answer_instruction(hits)
    )
