"""trice.training: response-only logits and checkpoints."""
