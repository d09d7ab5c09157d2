"""The executor: runs one claimed execution as far as it can go."""
