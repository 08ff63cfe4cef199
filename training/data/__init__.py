"""Training-side data: decoded image caches, composition control, torch datasets.

The readers themselves live in ``inference.datasets`` so the audit can use them
without torch.
"""
