"""One module per trainer: its data, losses and schedule on top of training.loop."""
