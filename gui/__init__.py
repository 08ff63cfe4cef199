"""Qt widgets and windows that show what inference/ computes; workers for capture and inference."""
