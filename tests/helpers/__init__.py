"""What several test modules share and import by name (fake servers, training callbacks, the tiny
model in train mode); fixtures every test gets without an import live in tests/conftest.py."""
