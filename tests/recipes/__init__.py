"""The recipe files shipped in trice/recipes/ (the GPU recipe and the accelerate configs)."""
