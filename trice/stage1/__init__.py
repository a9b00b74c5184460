"""TRICE stage I, behaviour cloning: build D_tool from the untuned model's probe (label, with
verified tool calls from tool_labels) and train on it with LoRA SFT (config, train_sft).
"""
