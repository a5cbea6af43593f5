"""Pictures of what the models see: augmented samples with their masks, boxes and class names."""
