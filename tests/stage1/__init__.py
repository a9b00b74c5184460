"""trice.stage1: D_tool labelling and LoRA SFT (stage I)."""
