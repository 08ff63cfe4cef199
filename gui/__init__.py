"""The Bias Mirror app: shows what ``inference`` computes, adds no science of its own."""
