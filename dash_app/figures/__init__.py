"""The viewer's figures: pure functions, data in, a plain figure dict (or component) out."""
