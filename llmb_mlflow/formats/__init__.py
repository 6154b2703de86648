"""What a run stores, as bytes: snapshots and attention images (numpy and Pillow only)."""
