"""Training: PyTorch trainers that produce every model the app runs."""
