"""What GLIDER asks an expert LLM when it needs a task instruction: one chat request, the same offline (training
the artifact) and online (llm instruction mode in the gateway), so both write instructions the same way."""

from __future__ import annotations

from experts.llm.base import GenerationRequest, Message

# Measured on the MMLU examples: SmolLM2-135M answers the questions whatever the wording; Qwen2.5-Coder-0.5B
# writes usable instructions with this prompt ("Answer questions about factor groups, ..."), hence the default.
WRITER_SYSTEM = "You are a helpful assistant. You do not answer questions; you describe what skill they test."
WRITER_PROMPT = ("Below are example questions from one task.\n\n{examples}\n\nDo not answer them. In one sentence, "
                 "write an instruction for this task of the form 'Answer questions about <topic>, ...'.")
MAX_EXAMPLE_CHARS = 400
EMPTY_INSTRUCTION = "Answer the question."  # what an expert that wrote nothing is taken to have written


def instruction_request(examples: list[str], max_tokens: int = 48, prompt: str = WRITER_PROMPT) -> GenerationRequest:
    """The chat request that asks an expert for a task instruction (greedy, so it is reproducible)."""
    shown = "\n\n".join(f"Example {i + 1}: {e.strip()[:MAX_EXAMPLE_CHARS]}" for i, e in enumerate(examples))
    return GenerationRequest(
        messages=(Message("system", WRITER_SYSTEM), Message("user", prompt.format(examples=shown))),
        max_tokens=max_tokens, temperature=0.0, stop=("\n\n",))


def clean_instruction(text: str) -> str:
    """One line, single-spaced; the fallback instruction when the expert wrote nothing."""
    return " ".join(text.split()) or EMPTY_INSTRUCTION
