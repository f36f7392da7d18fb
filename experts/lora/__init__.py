"""LoRA experts served as experts: many adapters on one base model, compressed adapters, adapter memory tiers."""
