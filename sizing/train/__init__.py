"""Training and fine-tuning sizing: memory, step time, cost and layout search (``aicap train``)."""
