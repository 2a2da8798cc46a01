"""What the entry points run: train, evaluate, predict, generate, and the Optuna search."""
