"""Plain nn.Modules, one file per model family."""
