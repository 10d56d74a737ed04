"""Use cases: where the pure core meets the store. The CLI and the API call these only."""
