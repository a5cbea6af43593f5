"""Native model families (one folder each) and the architecture registry."""
