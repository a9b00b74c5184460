"""``trice export``: a trained adapter as a model others load with plain transformers or peft, with
the prompt it was trained on as its chat template and a card that says how to call its tool."""
