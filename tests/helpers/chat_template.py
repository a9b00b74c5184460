"""A tiny model with a chat template that calls tools as Qwen2.5's does (hermes ``<tool_call>`` JSON),
for native-call tests that cannot download a real model: the conftest's tiny tokenizer has no
chat template at all."""

from __future__ import annotations

import shutil
from pathlib import Path

# Qwen2.5's layout, cut down: the tools' schemas in a system turn, an assistant call as
# "\n<tool_call>\n{json}\n</tool_call>" after "<|im_start|>assistant", every turn ending "<|im_end|>\n".
QWEN_LIKE_TEMPLATE = (
    "{%- if tools %}{{- '<|im_start|>system\\nYou may call functions.\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}"
    '{{- \'\\n</tools>\\nCall one as <tool_call>\\n{"name": <function-name>, "arguments": <args-json-object>}\\n</tool_call><|im_end|>\\n\' }}'
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' %}{{- '<|im_start|>assistant' }}"
    "{%- if message.content %}{{- '\\n' + message.content }}{%- endif %}"
    "{%- for tool_call in message.tool_calls or [] %}"
    "{%- set call = tool_call.function if tool_call.function is defined else tool_call %}"
    "{{- '\\n<tool_call>\\n{\"name\": \"' + call.name + '\", \"arguments\": ' + (call.arguments | tojson) + '}\\n</tool_call>' }}"
    "{%- endfor %}{{- '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def with_chat_template(model_dir: Path, out_dir: Path, template: str = QWEN_LIKE_TEMPLATE) -> Path:
    """A copy of ``model_dir`` whose tokenizer has ``template`` as its chat template."""
    from transformers import AutoTokenizer

    shutil.copytree(model_dir, out_dir, dirs_exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    tokenizer.chat_template = template
    tokenizer.save_pretrained(out_dir)
    return out_dir


def with_call_tokens(model_dir: Path, out_dir: Path) -> Path:
    """A copy of ``model_dir`` with the Qwen-like chat template whose vocabulary holds ``<tool_call>``
    and ``</tool_call>`` as single tokens with the *same* embedding and output rows, as
    Qwen2.5-Coder-0.5B-Instruct's are: a model only tells them apart once those rows are trained."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with_chat_template(model_dir, out_dir)
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    tokenizer.add_tokens(["<tool_call>", "</tool_call>"])
    model = AutoModelForCausalLM.from_pretrained(out_dir)
    model.resize_token_embeddings(len(tokenizer))
    open_id, close_id = tokenizer.convert_tokens_to_ids(["<tool_call>", "</tool_call>"])
    with torch.no_grad():
        for matrix in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
            matrix[open_id] = matrix[close_id] = matrix[:open_id].mean(0)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
