"""WASM deliverables: profiles, packaging, inspection and the smoke harness."""
