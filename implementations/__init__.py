"""Our torch implementations of losses torch.nn.functional lacks, and adapters to other code."""
