"""The LoRA training plumbing stage I and stage II share: model and Trainer setup with a non-finite
loss guard (lora), checkpoints and resuming (checkpoints), logits only where the loss is
(response_logits).
"""
