"""Training of experts, apart from what serves them: LLM LoRA experts and their MoErging gates, the query adapters
of retrieval experts and the pseudo-queries they learn from. Serving never imports this package
(tests/coe/serve/test_no_training_imports.py); it reads what these write through the artifact formats."""
