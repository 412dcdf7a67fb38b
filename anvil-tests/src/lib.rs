//! End-to-end tests live in `tests/`; each spawns its own anvil on port 0.
